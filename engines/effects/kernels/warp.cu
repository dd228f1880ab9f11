// Face warps of engines/effects/warp.py: the output pixel at p takes the input at p - d(p),
// sampled bilinearly (edges clamped) from an unmodified copy of the plane, with
//   d = slim(p) + eyes(p)
//   slim(p) = (1 - prod_k(1 - phi_k)) * sum_k(phi_k v_k) / sum_k(phi_k),
//             phi_k = (1 - |p - c_k|^2 / R^2)^2 inside R, 0 outside
//   eyes(p) = sum_e (p - c_e) * a * (1 - min(u^2, 1))^2,  u = |p - c_e| / R_e
// p is the pixel centre in frame coordinates: (x + 0.5, y + 0.5) for luma, (2x + 1, 2y + 1) for
// chroma. Sampling position in pixel-index coordinates: luma p - d - 0.5, chroma (p - d) / 2 - 0.5.
// Pixels where d is exactly zero keep their value (the reference leaves them untouched).
// Launch over the ROI (x0, y0, w, h) in the plane's own pixel coordinates; chans = 1 (Y) or 2 (UV).

__device__ __forceinline__ int clampi(int v, int lo, int hi) { return v < lo ? lo : (v > hi ? hi : v); }

extern "C" __global__ void warp_plane(const unsigned char* __restrict__ src, long long spitch,
                                      unsigned char* __restrict__ dst, long long pitch, int pw, int ph, int chans, int chroma,
                                      int x0, int y0, int w, int h,
                                      const float* __restrict__ slim_c, const float* __restrict__ slim_v,
                                      int nslim, float slim_inv_r2,
                                      const float* __restrict__ eye_c, const float* __restrict__ eye_r,
                                      int neyes, float eye_a) {
    int x = blockIdx.x * blockDim.x + threadIdx.x;
    int y = blockIdx.y * blockDim.y + threadIdx.y;
    if (x >= w || y >= h) return;
    int ix = x0 + x, iy = y0 + y;
    float px = chroma ? (float)ix * 2.f + 1.f : (float)ix + 0.5f;
    float py = chroma ? (float)iy * 2.f + 1.f : (float)iy + 0.5f;
    float dx = 0.f, dy = 0.f;
    if (nslim > 0) {
        float sw = 0.f, svx = 0.f, svy = 0.f, keep = 1.f;
        for (int k = 0; k < nslim; ++k) {
            float ox = px - slim_c[2 * k], oy = py - slim_c[2 * k + 1];
            float u = (ox * ox + oy * oy) * slim_inv_r2;
            float phi = u < 1.f ? (1.f - u) * (1.f - u) : 0.f;
            sw += phi;
            svx += phi * slim_v[2 * k];
            svy += phi * slim_v[2 * k + 1];
            keep *= 1.f - phi;
        }
        float scale = sw > 0.f ? (1.f - keep) / sw : 0.f;
        dx += svx * scale;
        dy += svy * scale;
    }
    for (int e = 0; e < neyes; ++e) {
        float ox = px - eye_c[2 * e], oy = py - eye_c[2 * e + 1];
        float u = sqrtf(ox * ox + oy * oy) / eye_r[e];
        float u2 = fminf(u * u, 1.f);
        float k = 1.f - (1.f - eye_a * (1.f - u2) * (1.f - u2));
        dx += ox * k;
        dy += oy * k;
    }
    if (dx == 0.f && dy == 0.f) return;
    float sx, sy;
    if (chroma) { sx = (px - dx) * 0.5f - 0.5f; sy = (py - dy) * 0.5f - 0.5f; }
    else { sx = px - dx - 0.5f; sy = py - dy - 0.5f; }
    float fx0 = floorf(sx), fy0 = floorf(sy);
    float fx = sx - fx0, fy = sy - fy0;
    int xa = clampi((int)fx0, 0, pw - 1), xb = clampi((int)fx0 + 1, 0, pw - 1);
    int ya = clampi((int)fy0, 0, ph - 1), yb = clampi((int)fy0 + 1, 0, ph - 1);
    for (int c = 0; c < chans; ++c) {
        float a = src[(long long)ya * spitch + (long long)xa * chans + c];
        float b = src[(long long)ya * spitch + (long long)xb * chans + c];
        float cc = src[(long long)yb * spitch + (long long)xa * chans + c];
        float d = src[(long long)yb * spitch + (long long)xb * chans + c];
        float top = (1.f - fx) * a + fx * b;
        float bot = (1.f - fx) * cc + fx * d;
        float v = (1.f - fy) * top + fy * bot;
        v = fminf(fmaxf(floorf(v + 0.5f), 0.f), 255.f);
        dst[(long long)iy * pitch + (long long)ix * chans + c] = (unsigned char)v;
    }
}
