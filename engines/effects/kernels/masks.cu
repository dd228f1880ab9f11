// Polygon fills and skin masks of engines/effects/masks.py, over a face ROI.
//
// fill_polys reproduces cv2.fillPoly(mask, polys, 1, LINE_8, shift=4) per pixel, as OpenCV (5.0)
// draws it in CollectPolyEdges and FillEdgeCollection:
//   each vertex (fixed point, 4 fractional bits, ROI pixel-index coordinates) is rounded to the
//   nearest pixel, (v + 8) >> 4; an edge whose rounded end points leave the ROI is first clipped
//   to it (cv::clipLine); every edge outline is drawn as the 8-connected line cv::LineIterator
//   walks between its (clipped) end points, left to right; the interior is filled row by row
//   between consecutive pairs of the sorted crossings of the edges with the row (even-odd rule
//   over all polygons of the call), the crossing x in 16.16 fixed point on the line through the
//   rounded (clipped) end points, with the edge's slope truncated to 16 fractional bits; an edge
//   covers the rows from its upper end point up to, not including, its lower one, and a span
//   covers the pixels from ceil(left) to floor(right).
// geometry:    oval = blurred oval fill; features = min(1, 2 * blurred features fill);
//              geometry = oval * (1 - features).
// skin_chroma: 1 - smoothstep(T0, T1, |(Cb, Cr) - ref|) at chroma resolution.
// lips_mask:   clip(outer - inner, 0, 1).

#define XY_SHIFT 16
#define MAX_CROSS 64

__device__ __forceinline__ long long round_vertex(int v) { return (long long)((v + 8) >> 4); }

__device__ __forceinline__ long long ceil_div(long long a, long long b) {
    // b > 0
    long long q = a / b;
    if ((a % b != 0) && (a > 0)) q += 1;
    return q;
}

// cv::clipLine to the w x h image: moves the end points onto its border; false if the segment
// lies outside.
__device__ bool clip_line(long long w, long long h, long long& x1, long long& y1, long long& x2, long long& y2) {
    long long right = w - 1, bottom = h - 1;
    int c1 = (x1 < 0) + (x1 > right) * 2 + (y1 < 0) * 4 + (y1 > bottom) * 8;
    int c2 = (x2 < 0) + (x2 > right) * 2 + (y2 < 0) * 4 + (y2 > bottom) * 8;
    if ((c1 & c2) == 0 && (c1 | c2) != 0) {
        long long a;
        if (c1 & 12) {
            a = c1 < 8 ? 0 : bottom;
            x1 += (long long)((double)(a - y1) * (double)(x2 - x1) / (double)(y2 - y1));
            y1 = a;
            c1 = (x1 < 0) + (x1 > right) * 2;
        }
        if (c2 & 12) {
            a = c2 < 8 ? 0 : bottom;
            x2 += (long long)((double)(a - y2) * (double)(x2 - x1) / (double)(y2 - y1));
            y2 = a;
            c2 = (x2 < 0) + (x2 > right) * 2;
        }
        if ((c1 & c2) == 0 && (c1 | c2) != 0) {
            if (c1) {
                a = c1 == 1 ? 0 : right;
                y1 += (long long)((double)(a - x1) * (double)(y2 - y1) / (double)(x2 - x1));
                x1 = a;
                c1 = 0;
            }
            if (c2) {
                a = c2 == 1 ? 0 : right;
                y2 += (long long)((double)(a - x2) * (double)(y2 - y1) / (double)(x2 - x1));
                x2 = a;
                c2 = 0;
            }
        }
    }
    return (c1 | c2) == 0;
}

// Is pixel (px, py) on the 8-connected line cv::LineIterator walks from a to b (left to right)?
// Along the major axis, step k moves the minor coordinate ceil((2 k minor - major) / (2 major)).
__device__ bool on_line(long long ax, long long ay, long long bx, long long by, long long px, long long py) {
    if (bx < ax) { long long t = ax; ax = bx; bx = t; t = ay; ay = by; by = t; }
    long long dx = bx - ax, dy = by - ay;
    long long sy = dy < 0 ? -1 : 1;
    dy = dy < 0 ? -dy : dy;
    if (dx >= dy) {
        long long k = px - ax;
        if (k < 0 || k > dx) return false;
        long long m = dx == 0 ? 0 : ceil_div(2 * k * dy - dx, 2 * dx);
        return py == ay + sy * m;
    }
    long long k = (py - ay) * sy;
    if (k < 0 || k > dy) return false;
    long long m = ceil_div(2 * k * dx - dy, 2 * dy);
    return px == ax + m;
}

// verts: (n, 2) int32 fixed point; starts: (npoly + 1) offsets into verts.
extern "C" __global__ void fill_polys(const int* __restrict__ verts, const int* __restrict__ starts, int npoly,
                                      int w, int h, float* __restrict__ out) {
    int x = blockIdx.x * blockDim.x + threadIdx.x;
    int y = blockIdx.y * blockDim.y + threadIdx.y;
    if (x >= w || y >= h) return;
    long long xs[MAX_CROSS];
    int n = 0;
    bool hit = false;
    for (int p = 0; p < npoly; ++p) {
        int s = starts[p], e = starts[p + 1];
        int cnt = e - s;
        for (int i = 0; i < cnt; ++i) {
            int j0 = s + (i + cnt - 1) % cnt, j1 = s + i;
            long long y0 = round_vertex(verts[2 * j0 + 1]), y1 = round_vertex(verts[2 * j1 + 1]);
            long long tx0 = round_vertex(verts[2 * j0]), ty0 = y0;
            long long tx1 = round_vertex(verts[2 * j1]), ty1 = y1;
            bool clipped = tx0 < 0 || tx0 >= w || tx1 < 0 || tx1 >= w || ty0 < 0 || ty0 >= h || ty1 < 0 || ty1 >= h;
            bool visible = clipped ? clip_line(w, h, tx0, ty0, tx1, ty1) : true;
            if (!hit && visible && on_line(tx0, ty0, tx1, ty1, x, y)) hit = true;
            if (y0 == y1) continue;
            long long c0y = y0, c1y = y1;
            if (clipped && ty0 != ty1) { c0y = ty0; c1y = ty1; }
            long long c0x = tx0 << XY_SHIFT, c1x = tx1 << XY_SHIFT;
            long long dx = (c1x - c0x) / (c1y - c0y);
            long long top, xt;
            int bottom;
            if (y0 < y1) { top = y0; bottom = (int)y1; xt = c0x + (y0 - c0y) * dx; }
            else { top = y1; bottom = (int)y0; xt = c1x + (y1 - c1y) * dx; }
            if (y < top || y >= bottom) continue;
            if (n < MAX_CROSS) xs[n++] = xt + (y - top) * dx;
        }
    }
    if (!hit) {
        for (int i = 1; i < n; ++i) {  // insertion sort
            long long k = xs[i];
            int j = i - 1;
            while (j >= 0 && xs[j] > k) { xs[j + 1] = xs[j]; --j; }
            xs[j + 1] = k;
        }
        const long long one = 1LL << XY_SHIFT;
        for (int i = 0; i + 1 < n; i += 2) {
            if ((xs[i] + one - 1) >> XY_SHIFT <= x && x <= xs[i + 1] >> XY_SHIFT) { hit = true; break; }
        }
    }
    out[(long long)y * w + x] = hit ? 1.f : 0.f;
}

extern "C" __global__ void geometry(const float* __restrict__ oval_b, const float* __restrict__ feat_b,
                                    float* __restrict__ geom, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    float f = fminf(1.f, 2.f * feat_b[i]);
    geom[i] = oval_b[i] * (1.f - f);
}

// uv: the interleaved chroma plane; (cx0, cy0) the ROI origin at chroma resolution; ref: (Cb, Cr).
extern "C" __global__ void skin_chroma(const unsigned char* __restrict__ uv, long long pitch, int cx0, int cy0,
                                       int w, int h, const float* __restrict__ ref, float t0, float t1,
                                       float* __restrict__ out) {
    int x = blockIdx.x * blockDim.x + threadIdx.x;
    int y = blockIdx.y * blockDim.y + threadIdx.y;
    if (x >= w || y >= h) return;
    const unsigned char* p = uv + (long long)(cy0 + y) * pitch + (long long)(cx0 + x) * 2;
    float d0 = (float)p[0] - ref[0];
    float d1 = (float)p[1] - ref[1];
    float dist = sqrtf(d0 * d0 + d1 * d1);
    float t = fminf(fmaxf((dist - t0) / (t1 - t0), 0.f), 1.f);
    out[(long long)y * w + x] = 1.f - t * t * (3.f - 2.f * t);
}

extern "C" __global__ void lips_mask(const float* __restrict__ outer, const float* __restrict__ inner,
                                     float* __restrict__ out, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    out[i] = fminf(fmaxf(outer[i] - inner[i], 0.f), 1.f);
}
