"""Read-only resources (the model catalog, diffusers configs, tokenizers), installed as the
package `hypersd_desktop.resources` (pyproject.toml maps this folder there); read them through
`hypersd_desktop.core.resources.resources_dir()`."""
