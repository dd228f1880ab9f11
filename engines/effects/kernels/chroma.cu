// Per-face chroma effects of engines/effects/cpu.py, in place on the interleaved UV plane of a
// face ROI, in order blush -> lips, rounded once (filters.to_u8):
//   skin_c  = down2(geometry) * skin_chroma                       (down2: mean of each 2x2 block)
//   cheeks  = max over both cheeks of (1 - u)^2 for u < 1, u = |p - c|^2 / R^2, p the chroma
//             pixel centre (2j + 1, 2i + 1) in frame coordinates
//   blush:  out += (s * BLUSH_MAX) * cheeks * skin_c * ((Cb, Cr)_colour - out)
//   lips:   out += (s * LIPS_MAX) * down2(blurred lip mask) * ((Cb, Cr)_colour - out)
// blush_k / lips_k are s * MAX (0 switches the effect off).

__device__ __forceinline__ float down2(const float* m, int w, int x, int y) {
    const float* r0 = m + (long long)(2 * y) * w;
    const float* r1 = r0 + w;
    return 0.25f * (r0[2 * x] + r1[2 * x] + r0[2 * x + 1] + r1[2 * x + 1]);
}

extern "C" __global__ void chroma_fx(unsigned char* __restrict__ uv, long long pitch, int cx0, int cy0, int cw, int chh,
                                     const float* __restrict__ geom, const float* __restrict__ skin_c,
                                     const float* __restrict__ lips_b, int w,
                                     float blush_k, float blush_cb, float blush_cr,
                                     double c0x, double c0y, double c1x, double c1y, double radius,
                                     float lips_k, float lips_cb, float lips_cr) {
    int x = blockIdx.x * blockDim.x + threadIdx.x;
    int y = blockIdx.y * blockDim.y + threadIdx.y;
    if (x >= cw || y >= chh) return;
    unsigned char* p = uv + (long long)(cy0 + y) * pitch + (long long)(cx0 + x) * 2;
    float u = (float)p[0], v = (float)p[1];
    if (blush_k > 0.f) {
        float xs = (float)(cx0 + x) * 2.f + 1.f;
        float ys = (float)(cy0 + y) * 2.f + 1.f;
        double r2 = radius * radius;
        double u0 = (((double)xs - c0x) * ((double)xs - c0x) + ((double)ys - c0y) * ((double)ys - c0y)) / r2;
        double u1 = (((double)xs - c1x) * ((double)xs - c1x) + ((double)ys - c1y) * ((double)ys - c1y)) / r2;
        float w0 = u0 < 1.0 ? (float)((1.0 - u0) * (1.0 - u0)) : 0.f;
        float w1 = u1 < 1.0 ? (float)((1.0 - u1) * (1.0 - u1)) : 0.f;
        float cheeks = fmaxf(fmaxf(0.f, w0), w1);
        float skin = down2(geom, w, x, y) * skin_c[(long long)y * cw + x];
        float wt = blush_k * cheeks * skin;
        u += wt * (blush_cb - u);
        v += wt * (blush_cr - v);
    }
    if (lips_k > 0.f) {
        float wt = lips_k * down2(lips_b, w, x, y);
        u += wt * (lips_cb - u);
        v += wt * (lips_cr - v);
    }
    p[0] = (unsigned char)fminf(fmaxf(floorf(u + 0.5f), 0.f), 255.f);
    p[1] = (unsigned char)fminf(fmaxf(floorf(v + 0.5f), 0.f), 255.f);
}
