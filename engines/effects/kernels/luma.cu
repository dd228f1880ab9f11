// Per-face luma effects of engines/effects/cpu.py on the float32 ROI `out` (h, w), in order
// smooth -> whiten -> sharpen, each reading what the previous one left:
//   skin(x, y) = geometry[y, x] * skin_chroma[y / 2, x / 2]   (co-sited chroma pixel)
//   smooth:  out += (s * SMOOTH_MAX) * skin * (q - out), q = guided_filter(out)
//   whiten:  out += skin * (tone_curve(out, beta) - out)
//   sharpen: out += (s * SHARPEN_AMOUNT) * oval * (1 - skin) * (out - gauss(out))
// tone_curve(y, beta) = 16 + 219 log(1 + (beta - 1) clip((y - 16) / 219, 0, 1)) / log(beta), identity for beta <= 1.

__device__ __forceinline__ float skin_at(const float* geom, const float* skin_c, int x, int y, int w, int cw) {
    return geom[(long long)y * w + x] * skin_c[(long long)(y >> 1) * cw + (x >> 1)];
}

extern "C" __global__ void smooth_blend(float* __restrict__ out, const float* __restrict__ q,
                                        const float* __restrict__ geom, const float* __restrict__ skin_c,
                                        int w, int h, int cw, float k) {
    int x = blockIdx.x * blockDim.x + threadIdx.x;
    int y = blockIdx.y * blockDim.y + threadIdx.y;
    if (x >= w || y >= h) return;
    long long i = (long long)y * w + x;
    float o = out[i];
    out[i] = o + k * skin_at(geom, skin_c, x, y, w, cw) * (q[i] - o);
}

extern "C" __global__ void whiten_blend(float* __restrict__ out, const float* __restrict__ geom,
                                        const float* __restrict__ skin_c, int w, int h, int cw, float beta) {
    int x = blockIdx.x * blockDim.x + threadIdx.x;
    int y = blockIdx.y * blockDim.y + threadIdx.y;
    if (x >= w || y >= h) return;
    long long i = (long long)y * w + x;
    float o = out[i];
    float t = o;
    if (beta > 1.f) {
        float v = fminf(fmaxf((o - 16.f) / 219.f, 0.f), 1.f);
        t = 16.f + 219.f * (float)(log1p((double)(beta - 1.f) * (double)v) / log((double)beta));
    }
    out[i] = o + skin_at(geom, skin_c, x, y, w, cw) * (t - o);
}

extern "C" __global__ void sharpen_blend(float* __restrict__ out, const float* __restrict__ blur,
                                         const float* __restrict__ oval, const float* __restrict__ geom,
                                         const float* __restrict__ skin_c, int w, int h, int cw, float k) {
    int x = blockIdx.x * blockDim.x + threadIdx.x;
    int y = blockIdx.y * blockDim.y + threadIdx.y;
    if (x >= w || y >= h) return;
    long long i = (long long)y * w + x;
    float o = out[i];
    float wt = oval[i] * (1.f - skin_at(geom, skin_c, x, y, w, cw));
    out[i] = o + k * wt * (o - blur[i]);
}
