"""The mask, filter and plane kernels one by one against the NumPy/OpenCV functions they port, on
the faces of real pictures: polygon fills pixel for pixel as cv2.fillPoly draws them (also where
a face leaves the frame), the blurred masks and window filters to float precision."""
from __future__ import annotations

import cv2
import numpy as np

from facestream.engines.effects import mesh
from facestream.engines.effects.filters import gaussian_blur, guided_filter
from facestream.engines.effects.gpu import GpuFilters, GpuRegion
from facestream.engines.effects.masks import FaceRegion, down2

from .host_kernels import HostStream, checks

POLYGON_SETS = (
    (mesh.FACE_OVAL,),
    (mesh.RIGHT_EYE, mesh.LEFT_EYE, mesh.RIGHT_BROW, mesh.LEFT_BROW, mesh.LIPS_OUTER, mesh.NOSTRILS),
    (mesh.LIPS_OUTER,),
    (mesh.LIPS_INNER,),
)


def _regions(host, scenes):
    filters = GpuFilters(HostStream(), host)
    for scene in scenes:
        for face in scene.faces:
            region = FaceRegion(face.landmarks, *scene.y.shape)
            yield scene, region, GpuRegion(region, scene.y, scene.uv, filters)


@checks("fill_polys")
def test_polygon_fills_are_opencvs(host, scenes):
    for scene, region, gpu in _regions(host, scenes):
        for polys in POLYGON_SETS:
            want = region.fill(*polys)
            got = gpu.fill(*polys)
            assert np.array_equal(got, want), f"{scene.name}: {np.count_nonzero(got != want)} pixels differ"


@checks("fill_polys")
def test_polygon_fills_are_opencvs_where_the_face_leaves_the_region(host, scenes):
    """The face polygons moved half a region out through each side, as for a face at a frame edge."""
    filters = GpuFilters(HostStream(), host)
    scene = scenes[0]
    face = scene.faces[0]
    base = FaceRegion(face.landmarks, *scene.y.shape)
    h, w = base.shape
    for dx, dy in ((-w // 2, 0), (w // 2, 0), (0, -h // 2), (0, h // 2), (-w // 2, h // 2)):
        region = FaceRegion(face.landmarks, *scene.y.shape)
        region.pts = region.pts + (dx, dy)   # the ROI stays where it was
        gpu = GpuRegion(region, scene.y, scene.uv, filters)
        for polys in POLYGON_SETS[:2]:
            want = np.zeros(region.shape, np.uint8)
            cv2.fillPoly(want, [region._poly(p) for p in polys], 1, lineType=cv2.LINE_8, shift=4)
            got = gpu.fill(*polys)
            assert want.any() and not want.all()
            assert np.array_equal(got, want), f"shift ({dx}, {dy}): {np.count_nonzero(got != want)} pixels differ"


@checks("fill_polys", "gauss_h", "gauss_v", "geometry", "skin_chroma", "lips_mask")
def test_masks_are_the_face_regions(host, scenes):
    for scene, region, gpu in _regions(host, scenes):
        uv_roi = scene.uv[region.chroma]
        oval, geometry = region.geometry()
        g_oval, g_geometry = gpu.geometry()
        assert np.abs(g_oval - oval).max() < 1e-4, scene.name
        assert np.abs(g_geometry - geometry).max() < 1e-4, scene.name
        assert np.allclose(gpu.reference_chroma(), region.reference_chroma(uv_roi), atol=1e-3), scene.name
        assert np.abs(gpu.skin_chroma() - region.skin_chroma(uv_roi)).max() < 1e-4, scene.name
        assert np.abs(down2(gpu.lips()) - region.lips_c()).max() < 1e-4, scene.name


@checks("box_h", "box_v", "guided_ab", "guided_q", "gauss_h", "gauss_v")
def test_window_filters_are_the_references(host, scenes):
    f = GpuFilters(HostStream(), host)
    for scene in scenes[:3]:
        y = scene.y.astype(np.float32)
        assert np.abs(f.gaussian(y, 2.5) - gaussian_blur(y, 2.5)).max() < 1e-3, scene.name
        assert np.abs(f.guided(y, 4, 144.0) - guided_filter(y, 4, 144.0)).max() < 1e-2, scene.name


@checks("load_u8", "store_u8")
def test_planes_load_and_store_only_their_region(host, scenes):
    f = GpuFilters(HostStream(), host)
    scene = scenes[0]
    region = FaceRegion(scene.faces[0].landmarks, *scene.y.shape)
    h, w = region.shape
    x0, y0 = region.x0, region.y0
    y, uv = scene.y.copy(), scene.uv.copy()
    assert np.array_equal(f.load(y, 1, 0, x0, y0, w, h), y[region.luma])
    for ch in (0, 1):
        assert np.array_equal(f.load(uv, 2, ch, x0 // 2, y0 // 2, w // 2, h // 2), uv[region.chroma][..., ch])
    # rounding half up and clamping, as filters.to_u8
    values = np.tile(np.array([-3.0, 0.49, 0.5, 127.5, 254.5, 300.0], np.float32), (h, w // 6 + 1))[:, :w]
    f.store(y, 1, 0, x0, y0, np.ascontiguousarray(values))
    assert np.array_equal(y[region.luma], np.clip(np.floor(values + 0.5), 0, 255).astype(np.uint8))
    outside = np.ones(y.shape, bool)
    outside[region.luma] = False
    assert np.array_equal(y[outside], scene.y[outside])
