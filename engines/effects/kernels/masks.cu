// Polygon fills and skin masks of engines/effects/masks.py, over a face ROI.
//
// fill_polys reproduces cv2.fillPoly(mask, polys, 1, LINE_8, shift=4) per pixel:
//   vertices are fixed point with 4 fractional bits in ROI pixel-index coordinates; each vertex
//   row is rounded (y + 8) >> 4 and x kept with 16 fractional bits; every edge outline is drawn
//   as an 8-connected Bresenham line between the rounded vertices (left to right, ties rounded
//   down as cv::LineIterator does), and each row is filled between consecutive pairs of the
//   sorted edge crossings, both ends rounded to the nearest pixel and included (even-odd rule
//   over all polygons of the call).
// geometry:    oval = blurred oval fill; features = min(1, 2 * blurred features fill);
//              geometry = oval * (1 - features).
// skin_chroma: 1 - smoothstep(T0, T1, |(Cb, Cr) - ref|) at chroma resolution.
// lips_mask:   clip(outer - inner, 0, 1).

#define XY_SHIFT 16
#define MAX_CROSS 64

__device__ __forceinline__ long long fx_x(int vx) { return ((long long)vx) << (XY_SHIFT - 4); }
__device__ __forceinline__ int fx_y(int vy) { return (vy + 8) >> 4; }
__device__ __forceinline__ int rnd_x(long long x) { return (int)((x + (1LL << (XY_SHIFT - 1))) >> XY_SHIFT); }

__device__ __forceinline__ long long ceil_div(long long a, long long b) {
    // b > 0
    long long q = a / b;
    if ((a % b != 0) && (a > 0)) q += 1;
    return q;
}

// Is pixel (px, py) on the LINE_8 segment between integer points a and b (as cv::Line draws it)?
__device__ bool on_line(int ax, int ay, int bx, int by, int px, int py) {
    if (bx < ax) { int t = ax; ax = bx; bx = t; t = ay; ay = by; by = t; }
    int dx = bx - ax, dy = by - ay;
    int sy = dy < 0 ? -1 : 1;
    dy = dy < 0 ? -dy : dy;
    if (dx >= dy) {
        int k = px - ax;
        if (k < 0 || k > dx) return false;
        long long m = dx == 0 ? 0 : ceil_div(2LL * k * dy - dx, 2LL * dx);
        return py == ay + sy * (int)m;
    }
    int k = (py - ay) * sy;
    if (k < 0 || k > dy) return false;
    long long m = ceil_div(2LL * k * dx - dy, 2LL * dy);
    return px == ax + (int)m;
}

// verts: (n, 2) int32 fixed point; starts: (npoly + 1) offsets into verts.
extern "C" __global__ void fill_polys(const int* __restrict__ verts, const int* __restrict__ starts, int npoly,
                                      int w, int h, float* __restrict__ out) {
    int x = blockIdx.x * blockDim.x + threadIdx.x;
    int y = blockIdx.y * blockDim.y + threadIdx.y;
    if (x >= w || y >= h) return;
    long long xs[MAX_CROSS];
    long long dxs[MAX_CROSS];
    int n = 0;
    bool hit = false;
    for (int p = 0; p < npoly; ++p) {
        int s = starts[p], e = starts[p + 1];
        int cnt = e - s;
        for (int i = 0; i < cnt; ++i) {
            int j0 = s + (i + cnt - 1) % cnt, j1 = s + i;
            long long x0 = fx_x(verts[2 * j0]), x1 = fx_x(verts[2 * j1]);
            int y0 = fx_y(verts[2 * j0 + 1]), y1 = fx_y(verts[2 * j1 + 1]);
            if (!hit && on_line(rnd_x(x0), y0, rnd_x(x1), y1, x, y)) hit = true;
            if (y0 == y1) continue;
            long long xt, ddx;
            int yt, yb;
            if (y0 < y1) { yt = y0; yb = y1; xt = x0; } else { yt = y1; yb = y0; xt = x1; }
            ddx = (x1 - x0) / (long long)(y1 - y0);
            if (y < yt || y >= yb) continue;
            if (n < MAX_CROSS) { xs[n] = xt + (long long)(y - yt) * ddx; dxs[n] = ddx; ++n; }
        }
    }
    if (!hit) {
        // insertion sort by (x, dx), as the edge list is ordered
        for (int i = 1; i < n; ++i) {
            long long kx = xs[i], kd = dxs[i];
            int j = i - 1;
            while (j >= 0 && (xs[j] > kx || (xs[j] == kx && dxs[j] > kd))) { xs[j + 1] = xs[j]; dxs[j + 1] = dxs[j]; --j; }
            xs[j + 1] = kx; dxs[j + 1] = kd;
        }
        for (int i = 0; i + 1 < n; i += 2) {
            if (rnd_x(xs[i]) <= x && x <= rnd_x(xs[i + 1])) { hit = true; break; }
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
