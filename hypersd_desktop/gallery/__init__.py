"""Gallery: PNG metadata, the image store, thumbnails and export (no Qt, no torch)."""
