"""`quality gallery`: the images behind the figures, as a static offline folder of HTML pages
(thumbnails and full-size files beside them, boxes drawn as SVG over the pictures)."""
