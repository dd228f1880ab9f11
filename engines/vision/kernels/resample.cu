// Model inputs cut straight from NV12 with the arithmetic of engines/vision/resample.py
// (InputMaker), which samples through OpenCV: each step below is the computation OpenCV does
// (as of OpenCV 5.0 in its 128-bit SIMD builds, the x86-64 and ARM wheels), so that the GPU models
// get the same inputs as the CPU ones.
//
// letterbox_nv12 + nv12_to_input (detectors): the frame scaled into the nw x nh box at (px, py)
//   (even), chroma into the (nw + 1) / 2 x (nh + 1) / 2 box at (px / 2, py / 2), the rest black
//   (16, 128, 128); each plane resampled into 8-bit samples as cv2.resize does, then converted by
//   OpenCV's fixed-point BT.601 limited-range NV12 -> RGB (cv2.COLOR_YUV2RGB_NV12) and scaled into
//   the planar CHW float32 input, x = rgb * k + offset.
//   Downscaling, cv2.INTER_AREA (`down` = 1): with whole factors the block mean, sum * (1 / area)
//   rounded to nearest even, except 2x2 blocks of one channel, (sum + 2) >> 2; otherwise the
//   source pixels covering the output pixel, in float: per source row the column weights times
//   the samples summed left to right, then the rows weighted and summed top to bottom, rounded
//   to nearest even. Weights as computeResizeAreaTab (partial cells under 1e-3 dropped).
//   Upscaling, cv2.INTER_LINEAR (`down` = 0): half-pixel centres; 11-bit fixed-point weights;
//   columns clamped into the plane (weight 1 at the edges), rows clamped after the weights are
//   taken; the vertical blend as OpenCV's SIMD loop computes it,
//   (((S0 >> 4) * b0 >> 16) + ((S1 >> 4) * b1 >> 16) + 2) >> 2, for the elements of a row up to
//   a multiple of 8, and (S0 b0 + S1 b1 + 2^21) >> 22 for the rest.
// affine_input (mesh): crop pixel (u, v) samples luma at M (u, v, 1) and chroma at Mc (u, v, 1),
//   both at every crop pixel (pixel-index coordinates, black outside), as cv2.warpAffine with
//   WARP_INVERSE_MAP and BORDER_CONSTANT computes them for a one-channel plane (luma, and Cb and Cr
//   each on its own): the map in float, the row term v M1 + M2 rounded to float, then one fused
//   multiply-add per pixel, and the bilinear blend as fused multiply-adds rounded to nearest
//   even. The (Y, Cb, Cr) samples are then converted in float by the 3x4 matrix `rgb`
//   (resample._rgb_transform: BT.601 limited range with the model's scale and offset folded in),
//   with no 8-bit rounding of RGB.

__device__ __forceinline__ float round_u8(float v) { return fminf(fmaxf(rintf(v), 0.f), 255.f); }

__device__ __forceinline__ int clamp_int(int v, int lo, int hi) { return v < lo ? lo : (v > hi ? hi : v); }

__device__ __forceinline__ int sample(const unsigned char* plane, long long pitch, int step, int ch, int x, int y) {
    return plane[(long long)y * pitch + (long long)x * step + ch];
}

// One axis of cv::resize INTER_AREA (computeResizeAreaTab): output pixel d covers source pixels
// [s1 - 1 (if head), s2 (if tail)], weighed wh, wm (each whole pixel), wt.
struct AreaTaps {
    int s1, s2;
    bool head, tail;
    float wh, wm, wt;
};

__device__ AreaTaps area_taps(int d, int ssize, double scale) {
    AreaTaps t;
    double f1 = __dmul_rn((double)d, scale);
    double f2 = __dadd_rn(f1, scale);
    double cell = fmin(scale, (double)ssize - f1);
    t.s2 = min((int)floor(f2), ssize - 1);
    t.s1 = min((int)ceil(f1), t.s2);
    t.head = (double)t.s1 - f1 > 1e-3;
    t.tail = f2 - (double)t.s2 > 1e-3;
    t.wh = (float)(((double)t.s1 - f1) / cell);
    t.wm = (float)(1.0 / cell);
    t.wt = (float)(fmin(fmin(f2 - (double)t.s2, 1.0), cell) / cell);
    return t;
}

// Sum over one source row of the column taps, left to right, in float.
__device__ float area_row(const unsigned char* plane, long long pitch, int step, int ch, int y, const AreaTaps& tx) {
    float buf = 0.f;
    if (tx.head) buf = __fadd_rn(buf, __fmul_rn((float)sample(plane, pitch, step, ch, tx.s1 - 1, y), tx.wh));
    for (int x = tx.s1; x < tx.s2; ++x) buf = __fadd_rn(buf, __fmul_rn((float)sample(plane, pitch, step, ch, x, y), tx.wm));
    if (tx.tail) buf = __fadd_rn(buf, __fmul_rn((float)sample(plane, pitch, step, ch, tx.s2, y), tx.wt));
    return buf;
}

// cv::resize INTER_AREA of channel `ch` of a sw x sh plane to dw x dh, output pixel (dx, dy).
__device__ float resize_area(const unsigned char* plane, long long pitch, int step, int ch, int sw, int sh,
                             int dw, int dh, int dx, int dy) {
    double scale_x = 1.0 / ((double)dw / (double)sw), scale_y = 1.0 / ((double)dh / (double)sh);
    double ix = rint(scale_x), iy = rint(scale_y);
    if (fabs(scale_x - ix) < 2.220446049250313e-16 && fabs(scale_y - iy) < 2.220446049250313e-16) {
        int ax = (int)ix, ay = (int)iy, sum = 0;
        for (int y = dy * ay; y < dy * ay + ay; ++y)
            for (int x = dx * ax; x < dx * ax + ax; ++x) sum += sample(plane, pitch, step, ch, x, y);
        if (ax == 2 && ay == 2 && step == 1) return (float)((sum + 2) >> 2);
        return round_u8(__fmul_rn((float)sum, 1.f / (float)(ax * ay)));
    }
    AreaTaps tx = area_taps(dx, sw, scale_x), ty = area_taps(dy, sh, scale_y);
    float sum = 0.f;
    bool first = true;
    for (int y = ty.s1 - (ty.head ? 1 : 0); y <= ty.s2 - (ty.tail ? 0 : 1); ++y) {
        float wy = (y < ty.s1) ? ty.wh : (y < ty.s2 ? ty.wm : ty.wt);
        float t = __fmul_rn(wy, area_row(plane, pitch, step, ch, y, tx));
        sum = first ? t : __fadd_rn(sum, t);
        first = false;
    }
    return round_u8(sum);
}

// Source index and 11-bit weights of output index d along one axis of cv::resize INTER_LINEAR.
__device__ void linear_taps(int d, double scale, int* s, int* w0, int* w1, float* f) {
    float fx = (float)__dadd_rn(__dmul_rn(__dadd_rn((double)d, 0.5), scale), -0.5);
    int sx = (int)floorf(fx);
    *s = sx;
    *f = fx - (float)sx;
    *w0 = (int)rintf((1.f - *f) * 2048.f);
    *w1 = (int)rintf(*f * 2048.f);
}

// cv::resize INTER_LINEAR (8-bit) of channel `ch` of a sw x sh plane to dw x dh, output pixel (dx, dy).
__device__ float resize_linear(const unsigned char* plane, long long pitch, int step, int ch, int sw, int sh,
                               int dw, int dh, int dx, int dy) {
    double scale_x = 1.0 / ((double)dw / (double)sw), scale_y = 1.0 / ((double)dh / (double)sh);
    int sx, a0, a1, sy, b0, b1;
    float fx, fy;
    linear_taps(dx, scale_x, &sx, &a0, &a1, &fx);
    if (sx < 0) { sx = 0; a0 = 2048; a1 = 0; }
    bool right = sx >= sw - 1;
    if (right) sx = sw - 1;
    linear_taps(dy, scale_y, &sy, &b0, &b1, &fy);
    int rows[2] = {clamp_int(sy, 0, sh - 1), clamp_int(sy + 1, 0, sh - 1)};
    int s[2];
    for (int k = 0; k < 2; ++k) {
        s[k] = right ? sample(plane, pitch, step, ch, sx, rows[k]) * 2048
                     : sample(plane, pitch, step, ch, sx, rows[k]) * a0 + sample(plane, pitch, step, ch, sx + 1, rows[k]) * a1;
    }
    int width = dw * step, e = dx * step + ch;
    int v;
    if (e < (width & ~7)) {
        int h0 = ((int)(short)(s[0] >> 4) * (int)(short)b0) >> 16;
        int h1 = ((int)(short)(s[1] >> 4) * (int)(short)b1) >> 16;
        v = (h0 + h1 + 2) >> 2;
    } else {
        v = (int)(((long long)s[0] * b0 + (long long)s[1] * b1 + (1LL << 21)) >> 22);
    }
    return (float)clamp_int(v, 0, 255);
}

extern "C" __global__ void letterbox_nv12(const unsigned char* __restrict__ y, long long ypitch,
                                          const unsigned char* __restrict__ uv, long long uvpitch,
                                          int W, int H, int size, int nw, int nh, int px, int py, int down,
                                          unsigned char* __restrict__ cy, unsigned char* __restrict__ cuv) {
    int u = blockIdx.x * blockDim.x + threadIdx.x;
    int v = blockIdx.y * blockDim.y + threadIdx.y;
    if (u >= size || v >= size) return;
    float Y = 16.f;
    int bx = u - px, by = v - py;
    if (bx >= 0 && by >= 0 && bx < nw && by < nh)
        Y = down ? resize_area(y, ypitch, 1, 0, W, H, nw, nh, bx, by) : resize_linear(y, ypitch, 1, 0, W, H, nw, nh, bx, by);
    cy[(long long)v * size + u] = (unsigned char)Y;
    // chroma (one thread per chroma sample)
    int half = size / 2;
    if (u >= half || v >= half) return;
    int cw = (nw + 1) / 2, chh = (nh + 1) / 2;
    int pw = W / 2, ph = H / 2;
    float c[2] = {128.f, 128.f};
    int cx = u - px / 2, cyy = v - py / 2;
    if (cx >= 0 && cyy >= 0 && cx < cw && cyy < chh) {
        for (int k = 0; k < 2; ++k)
            c[k] = down ? resize_area(uv, uvpitch, 2, k, pw, ph, cw, chh, cx, cyy)
                        : resize_linear(uv, uvpitch, 2, k, pw, ph, cw, chh, cx, cyy);
    }
    cuv[((long long)v * half + u) * 2] = (unsigned char)c[0];
    cuv[((long long)v * half + u) * 2 + 1] = (unsigned char)c[1];
}

// cv::warpAffine INTER_LINEAR of one channel (`ch` of `chans` interleaved) of an 8-bit plane at (sx, sy),
// as OpenCV warps a one-channel plane: float blend, constant border.
__device__ float warp_float(const unsigned char* plane, long long pitch, int chans, int ch, int pw, int ph,
                            float sx, float sy, float border) {
    int ix = (int)floorf(sx), iy = (int)floorf(sy);
    float fx = sx - (float)ix, fy = sy - (float)iy;
    if ((unsigned)(ix + 1) >= (unsigned)(pw + 1) || (unsigned)(iy + 1) >= (unsigned)(ph + 1)) return border;
    float p[4];
    for (int k = 0; k < 4; ++k) {
        int xx = ix + (k & 1), yy = iy + (k >> 1);
        p[k] = (xx < 0 || yy < 0 || xx >= pw || yy >= ph) ? border : (float)sample(plane, pitch, chans, ch, xx, yy);
    }
    float v0 = fmaf(fx, p[1] - p[0], p[0]);
    float v1 = fmaf(fx, p[3] - p[2], p[2]);
    return round_u8(fmaf(fy, v1 - v0, v0));
}

// m: luma map, c: chroma map, both from crop pixel indices to plane pixel indices;
// rgb: 3x4 row-major; out: (3, size, size).
extern "C" __global__ void affine_input(const unsigned char* __restrict__ y, long long ypitch,
                                        const unsigned char* __restrict__ uv, long long uvpitch,
                                        int W, int H, int size,
                                        float m0, float m1, float m2, float m3, float m4, float m5,
                                        float c0, float c1, float c2, float c3, float c4, float c5,
                                        const float* __restrict__ rgb, float* __restrict__ out) {
    int u = blockIdx.x * blockDim.x + threadIdx.x;
    int v = blockIdx.y * blockDim.y + threadIdx.y;
    if (u >= size || v >= size) return;
    float sx = fmaf(m0, (float)u, __fadd_rn(__fmul_rn(m1, (float)v), m2));
    float sy = fmaf(m3, (float)u, __fadd_rn(__fmul_rn(m4, (float)v), m5));
    float cx = fmaf(c0, (float)u, __fadd_rn(__fmul_rn(c1, (float)v), c2));
    float cy = fmaf(c3, (float)u, __fadd_rn(__fmul_rn(c4, (float)v), c5));
    float yuv[3];
    yuv[0] = warp_float(y, ypitch, 1, 0, W, H, sx, sy, 16.f);
    for (int k = 0; k < 2; ++k) yuv[k + 1] = warp_float(uv, uvpitch, 2, k, W / 2, H / 2, cx, cy, 128.f);
    long long plane = (long long)size * size, i = (long long)v * size + u;
    for (int k = 0; k < 3; ++k) {
        const float* r = rgb + 4 * k;
        out[k * plane + i] = r[0] * yuv[0] + r[1] * yuv[1] + r[2] * yuv[2] + r[3];
    }
}

// OpenCV's YUV420 -> RGB (color_yuv: ITUR_BT_601_* coefficients, 20-bit fixed point).
extern "C" __global__ void nv12_to_input(const unsigned char* __restrict__ cy, const unsigned char* __restrict__ cuv,
                                         int size, float k, float offset, float* __restrict__ out) {
    int u = blockIdx.x * blockDim.x + threadIdx.x;
    int v = blockIdx.y * blockDim.y + threadIdx.y;
    if (u >= size || v >= size) return;
    const int CY = 1220542, CUB = 2116026, CUG = -409993, CVG = -852492, CVR = 1673527, SHIFT = 20;
    int half = size / 2;
    int Y = (int)cy[(long long)v * size + u];
    long long ci = ((long long)(v >> 1) * half + (u >> 1)) * 2;
    int U = (int)cuv[ci] - 128, V = (int)cuv[ci + 1] - 128;
    int yy = max(0, Y - 16) * CY;
    int ruv = (1 << (SHIFT - 1)) + CVR * V;
    int guv = (1 << (SHIFT - 1)) + CVG * V + CUG * U;
    int buv = (1 << (SHIFT - 1)) + CUB * U;
    int r = min(255, max(0, (yy + ruv) >> SHIFT));
    int g = min(255, max(0, (yy + guv) >> SHIFT));
    int b = min(255, max(0, (yy + buv) >> SHIFT));
    long long plane = (long long)size * size, i = (long long)v * size + u;
    out[i] = (float)r * k + offset;
    out[plane + i] = (float)g * k + offset;
    out[2 * plane + i] = (float)b * k + offset;
}
