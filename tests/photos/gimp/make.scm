;; The GIMP files of this folder, made with GIMP 2.10.34 (Debian 12) by this Script-Fu:
;;   gimp-console-2.10 -i -d -f -b '(load "make.scm")' -b '(gimp-quit 0)'
;; Each NAME.xcf is saved as GIMP saves it; NAME.gimp.png is GIMP's own picture of it: a layer "new from visible",
;; made 8-bit gamma encoded (an indexed image made RGB first), exported as PNG. The plasma is seeded, so the
;; pictures are alike each time (within a few levels: GEGL works in threads); each is made at 300 x 200 or
;; 240 x 160 and scaled to 96 x 64 before it is saved.

(define (fill-ellipse image layer colour x y w h)
  (gimp-image-select-ellipse image CHANNEL-OP-REPLACE x y w h)
  (gimp-context-set-foreground colour)
  (gimp-drawable-edit-fill layer FILL-FOREGROUND)
  (gimp-selection-none image))

(define (new-layer image name w h opacity mode parent position)
  (let ((layer (car (gimp-layer-new image w h RGBA-IMAGE name opacity mode))))
    (gimp-image-insert-layer image layer parent position)
    layer))

(define (make-sketch legacy grouped)
  (let* ((image (car (gimp-image-new 300 200 RGB)))
         (normal (if legacy LAYER-MODE-NORMAL-LEGACY LAYER-MODE-NORMAL))
         (multiply (if legacy LAYER-MODE-MULTIPLY-LEGACY LAYER-MODE-MULTIPLY))
         (screen (if legacy LAYER-MODE-SCREEN-LEGACY LAYER-MODE-SCREEN))
         (background (car (gimp-layer-new image 300 200 RGB-IMAGE "Background" 100 normal)))
         (group 0) (layer 0) (mask 0))
    (gimp-image-insert-layer image background 0 0)
    (plug-in-plasma 1 image background 7 2.5)
    ; a semi-transparent red disc at 60 %
    (set! layer (new-layer image "disc" 300 200 60 normal 0 0))
    (fill-ellipse image layer '(230 20 20) 20 20 120 120)
    ; a layer partly off the canvas, offset
    (set! layer (new-layer image "offset" 150 100 100 normal 0 0))
    (fill-ellipse image layer '(20 60 230) 0 0 150 100)
    (gimp-layer-set-offsets layer 200 140)
    ; a group at 70 % with two children
    (set! group (if grouped (car (gimp-layer-group-new image)) 0))
    (if grouped (gimp-image-insert-layer image group 0 0))
    (if grouped (gimp-layer-set-opacity group 70))
    (set! layer (new-layer image "in group 1" 300 200 100 normal group 0))
    (fill-ellipse image layer '(250 230 30) 150 10 100 80)
    (set! layer (new-layer image "in group 2" 300 200 100 normal group 0))
    (fill-ellipse image layer '(30 200 60) 190 40 90 90)
    ; a layer with a mask fading it out
    (set! layer (new-layer image "masked" 300 200 100 normal 0 0))
    (fill-ellipse image layer '(255 255 255) 60 100 160 90)
    (set! mask (car (gimp-layer-create-mask layer ADD-MASK-WHITE)))
    (gimp-layer-add-mask layer mask)
    (gimp-context-set-default-colors)
    (gimp-context-set-gradient "FG to BG (RGB)")
    (gimp-drawable-edit-gradient-fill mask GRADIENT-LINEAR 0 FALSE 1 0 TRUE 60 0 220 0)
    ; multiply and screen
    (set! layer (new-layer image "multiply" 300 200 100 multiply 0 0))
    (fill-ellipse image layer '(120 200 255) 100 0 120 120)
    (set! layer (new-layer image "screen" 300 200 100 screen 0 0))
    (fill-ellipse image layer '(90 0 120) 0 120 100 80)
    ; a hidden layer
    (set! layer (new-layer image "hidden" 300 200 100 normal 0 0))
    (fill-ellipse image layer '(0 0 0) 0 0 300 200)
    (gimp-item-set-visible layer FALSE)
    image))

(define save-dir "./")
(define scale-to #f)
(define (save image path)
  (if scale-to (gimp-image-scale image (car scale-to) (cadr scale-to)))
  (gimp-xcf-save 0 image (car (gimp-image-get-active-drawable image)) path path)
  (if (= (car (gimp-image-base-type image)) INDEXED) (gimp-image-convert-rgb image))
  (let ((visible (car (gimp-layer-new-from-visible image image "visible")))
        (png (string-append (substring path 0 (- (string-length path) 4)) ".gimp.png")))
    (gimp-image-insert-layer image visible 0 0)
    (if (not (= (car (gimp-image-get-precision image)) PRECISION-U8-GAMMA))
        (gimp-image-convert-precision image PRECISION-U8-GAMMA))
    (file-png-save2 1 image visible png png 0 9 0 0 0 0 0 0 0)))

(define (made name legacy change)
  (let ((image (make-sketch legacy (not (equal? name "sketch-indexed")))))
    (change image)
    (save image (string-append save-dir name ".xcf"))
    (gimp-image-delete image)))

(define (precision p) (lambda (image) (gimp-image-convert-precision image p)))

(define (modes-sketch legacy)
  (modes-sketch-of legacy (if legacy
                              (list LAYER-MODE-DIFFERENCE-LEGACY LAYER-MODE-ADDITION-LEGACY
                                    LAYER-MODE-SUBTRACT-LEGACY LAYER-MODE-DARKEN-ONLY-LEGACY
                                    LAYER-MODE-LIGHTEN-ONLY-LEGACY LAYER-MODE-MULTIPLY-LEGACY)
                              (list LAYER-MODE-DIFFERENCE LAYER-MODE-ADDITION LAYER-MODE-SUBTRACT
                                    LAYER-MODE-DARKEN-ONLY LAYER-MODE-LIGHTEN-ONLY LAYER-MODE-MULTIPLY))))

; a layer at 80 % in each of `modes` over a plasma, each a little to the right of the one before
(define (modes-sketch-of legacy modes)
  (let* ((image (car (gimp-image-new 240 160 RGB)))
         (background (car (gimp-layer-new image 240 160 RGB-IMAGE "Background" 100 LAYER-MODE-NORMAL)))
         (group 0) (layer 0) (mask 0) (x 0))
    (gimp-image-insert-layer image background 0 0)
    (plug-in-plasma 1 image background 3 2.0)
    (for-each (lambda (mode)
                (set! layer (new-layer image "mode" 240 160 80 mode 0 0))
                (fill-ellipse image layer '(200 120 40) x 10 70 70)
                (fill-ellipse image layer '(40 90 210) (+ x 10) 60 40 40)
                (set! x (+ x 38)))
              modes)
    ; a pass-through group at 50 % with a multiply layer and a normal one, and a mask on the group
    (set! group (car (gimp-layer-group-new image)))
    (gimp-image-insert-layer image group 0 0)
    (gimp-layer-set-mode group LAYER-MODE-PASS-THROUGH)
    (gimp-layer-set-opacity group 50)
    (set! layer (new-layer image "multiply in group" 240 160 100 LAYER-MODE-MULTIPLY group 0))
    (fill-ellipse image layer '(255 40 40) 20 90 120 60)
    (set! layer (new-layer image "normal in group" 120 80 100 LAYER-MODE-NORMAL group 0))
    (gimp-layer-set-offsets layer 150 90)
    (fill-ellipse image layer '(40 255 40) 0 0 120 80)
    (set! mask (car (gimp-layer-create-mask group ADD-MASK-WHITE)))
    (gimp-layer-add-mask group mask)
    (gimp-context-set-default-colors)
    (gimp-context-set-gradient "FG to BG (RGB)")
    (gimp-drawable-edit-gradient-fill mask GRADIENT-LINEAR 0 FALSE 1 0 TRUE 0 0 0 160)
    image))
(define (made-modes name legacy change)
  (let ((image (modes-sketch legacy)))
    (change image)
    (save image (string-append save-dir name ".xcf"))
    (gimp-image-delete image)))

(define (made-modes-of name legacy modes)
  (let ((image (modes-sketch-of legacy modes)))
    (save image (string-append save-dir name ".xcf"))
    (gimp-image-delete image)))

(set! scale-to (list 96 64))
(made "sketch-legacy-8bit" #t (lambda (image) #t))
(made "sketch-8bit" #f (lambda (image) #t))
(made "sketch-16bit-linear" #f (precision PRECISION-U16-LINEAR))
(made "sketch-half" #f (precision PRECISION-HALF-LINEAR))
(made "sketch-grey-16bit" #f (lambda (image) (gimp-image-convert-grayscale image)
                                             (gimp-image-convert-precision image PRECISION-U16-GAMMA)))
(made "sketch-indexed" #f (lambda (image) (gimp-image-convert-indexed image CONVERT-DITHER-NONE
                                                                      CONVERT-PALETTE-GENERATE 64 FALSE FALSE "")))
(made-modes "modes" #f (lambda (image) #t))
(made-modes "modes-legacy" #t (lambda (image) #t))
(made-modes-of "modes-light" #f (list LAYER-MODE-OVERLAY LAYER-MODE-SOFTLIGHT LAYER-MODE-HARDLIGHT
                                     LAYER-MODE-DODGE LAYER-MODE-BURN LAYER-MODE-GRAIN-EXTRACT LAYER-MODE-ERASE))
(made-modes-of "modes-more" #f (list LAYER-MODE-GRAIN-MERGE LAYER-MODE-DIVIDE LAYER-MODE-LINEAR-LIGHT
                                    LAYER-MODE-EXCLUSION LAYER-MODE-VIVID-LIGHT LAYER-MODE-PIN-LIGHT
                                    LAYER-MODE-LINEAR-BURN))
(made-modes-of "modes-legacy-light" #t (list LAYER-MODE-SOFTLIGHT-LEGACY LAYER-MODE-HARDLIGHT-LEGACY
                                            LAYER-MODE-DODGE-LEGACY LAYER-MODE-BURN-LEGACY
                                            LAYER-MODE-GRAIN-EXTRACT-LEGACY LAYER-MODE-GRAIN-MERGE-LEGACY
                                            LAYER-MODE-DIVIDE-LEGACY))
