"""Index sets of the 468-point MediaPipe face mesh that the effects use.

Contours are ordered so that they can be drawn as polygons. "Right" and "left" are the
subject's: the right eye is on the image's left side in an unmirrored picture.
"""
from __future__ import annotations

FACE_OVAL = (
    10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377,
    152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109,
)
RIGHT_EYE = (33, 7, 163, 144, 145, 153, 154, 155, 133, 173, 157, 158, 159, 160, 161, 246)
LEFT_EYE = (263, 249, 390, 373, 374, 380, 381, 382, 362, 398, 384, 385, 386, 387, 388, 466)
# Upper edge then lower edge reversed: a closed outline of each brow.
RIGHT_BROW = (70, 63, 105, 66, 107, 55, 65, 52, 53, 46)
LEFT_BROW = (300, 293, 334, 296, 336, 285, 295, 282, 283, 276)
LIPS_OUTER = (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291, 409, 270, 269, 267, 0, 37, 39, 40, 185)
LIPS_INNER = (78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308, 415, 310, 311, 312, 13, 82, 81, 80, 191)
# The underside of the nose around both nostrils (alar wings to the columella).
NOSTRILS = (64, 98, 97, 2, 326, 327, 294, 278, 344, 440, 275, 4, 45, 220, 115, 48)

# Eye geometry: corners and the mid points of the lids.
RIGHT_EYE_CORNERS = (33, 133)
LEFT_EYE_CORNERS = (263, 362)
RIGHT_EYE_LIDS = (159, 145)
LEFT_EYE_LIDS = (386, 374)

# Cheek centres (for blush) and the face's midline.
RIGHT_CHEEK = 50
LEFT_CHEEK = 280
FOREHEAD_TOP = 10
CHIN = 152
NOSE_TIP = 1

# Control points of the slimming warp: the lower face contour from the cheekbones to the chin,
# each side ordered from the ear down.
RIGHT_JAW = (93, 132, 58, 172, 136, 150, 149)
LEFT_JAW = (323, 361, 288, 397, 365, 379, 378)
