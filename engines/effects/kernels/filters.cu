// Window filters of engines/effects/filters.py on float32 planes (reflect-101 borders).
//
// box_h / box_v:     mean over 2r+1 taps along one axis (box_mean = box_v(box_h(x)));
//                    `square` = 1 filters x*x instead of x (for the guided filter's second moment).
// gauss_h / gauss_v: separable convolution with the taps of gaussian_kernel(sigma) (horizontal first).
// guided_ab:         v = max(box(i*i) - m*m, 0); a = v / (v + eps); b = m - a*m.
// guided_q:          q = box(a) * i + box(b).
// All buffers are dense (h, w) float32 arrays.

__device__ __forceinline__ int reflect101(int k, int n) {
    if (n == 1) return 0;
    while (k < 0 || k >= n) {
        if (k < 0) k = -k;
        if (k >= n) k = 2 * n - 2 - k;
    }
    return k;
}

extern "C" __global__ void box_h(const float* __restrict__ src, float* __restrict__ dst,
                                 int w, int h, int r, int square) {
    int x = blockIdx.x * blockDim.x + threadIdx.x;
    int y = blockIdx.y * blockDim.y + threadIdx.y;
    if (x >= w || y >= h) return;
    const float* row = src + (long long)y * w;
    float s = 0.f;
    for (int k = -r; k <= r; ++k) {
        float v = row[reflect101(x + k, w)];
        s += square ? v * v : v;
    }
    dst[(long long)y * w + x] = s / (float)(2 * r + 1);
}

extern "C" __global__ void box_v(const float* __restrict__ src, float* __restrict__ dst,
                                 int w, int h, int r) {
    int x = blockIdx.x * blockDim.x + threadIdx.x;
    int y = blockIdx.y * blockDim.y + threadIdx.y;
    if (x >= w || y >= h) return;
    float s = 0.f;
    for (int k = -r; k <= r; ++k) s += src[(long long)reflect101(y + k, h) * w + x];
    dst[(long long)y * w + x] = s / (float)(2 * r + 1);
}

extern "C" __global__ void gauss_h(const float* __restrict__ src, float* __restrict__ dst,
                                   const float* __restrict__ taps, int w, int h, int r) {
    int x = blockIdx.x * blockDim.x + threadIdx.x;
    int y = blockIdx.y * blockDim.y + threadIdx.y;
    if (x >= w || y >= h) return;
    const float* row = src + (long long)y * w;
    float s = 0.f;
    for (int k = -r; k <= r; ++k) s += taps[k + r] * row[reflect101(x + k, w)];
    dst[(long long)y * w + x] = s;
}

extern "C" __global__ void gauss_v(const float* __restrict__ src, float* __restrict__ dst,
                                   const float* __restrict__ taps, int w, int h, int r) {
    int x = blockIdx.x * blockDim.x + threadIdx.x;
    int y = blockIdx.y * blockDim.y + threadIdx.y;
    if (x >= w || y >= h) return;
    float s = 0.f;
    for (int k = -r; k <= r; ++k) s += taps[k + r] * src[(long long)reflect101(y + k, h) * w + x];
    dst[(long long)y * w + x] = s;
}

extern "C" __global__ void guided_ab(const float* __restrict__ m, const float* __restrict__ mm,
                                     float* __restrict__ a, float* __restrict__ b, int n, float eps) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    float mi = m[i];
    float v = fmaxf(mm[i] - mi * mi, 0.f);
    float ai = v / (v + eps);
    a[i] = ai;
    b[i] = mi - ai * mi;
}

extern "C" __global__ void guided_q(const float* __restrict__ ma, const float* __restrict__ mb,
                                    const float* __restrict__ src, float* __restrict__ q, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    q[i] = ma[i] * src[i] + mb[i];
}
