// Model inputs cut straight from NV12, as engines/vision/resample.py (InputMaker) makes them:
// the crop is made in NV12 (luma size x size, chroma size/2 x size/2), each plane resampled once
// into 8-bit samples (rounded to nearest, as OpenCV's uint8 output), then converted to RGB with
// OpenCV's fixed-point BT.601 limited-range NV12 -> RGB (cv2.COLOR_YUV2RGB_NV12), then scaled
// into the model's planar CHW float32 input: x = rgb * k + offset.
//
// letterbox_nv12: the frame scaled into the nw x nh box at (px, py) (even), chroma into the
//   (nw + 1) / 2 x (nh + 1) / 2 box at (px / 2, py / 2); the rest black (16, 128, 128).
//   Downscaling integrates pixel areas (cv2.INTER_AREA), upscaling is bilinear with half-pixel
//   centres (cv2.INTER_LINEAR).
// affine_nv12: crop pixel (u, v) samples the luma plane at M (u, v, 1) and crop chroma pixel
//   (u, v) the chroma plane at Mc (u, v, 1) (pixel-index coordinates), bilinear, black outside
//   (cv2.warpAffine with WARP_INVERSE_MAP and BORDER_CONSTANT).
// nv12_to_input: the conversion to the model input.

__device__ __forceinline__ float round_u8(float v) { return fminf(fmaxf(rintf(v), 0.f), 255.f); }

// Area average of channel `ch` of a plane over [fx0, fx1) x [fy0, fy1) (source pixel units).
__device__ float area_sample(const unsigned char* plane, long long pitch, int step, int ch, int pw, int ph,
                             double fx0, double fx1, double fy0, double fy1) {
    int sx0 = (int)ceil(fx0), sx1 = (int)floor(fx1);
    int sy0 = (int)ceil(fy0), sy1 = (int)floor(fy1);
    double acc = 0.0, wsum = 0.0;
    for (int yy = sy0 - 1; yy <= sy1; ++yy) {
        double wy;
        if (yy == sy0 - 1) wy = (sy0 - fy0 > 1e-3) ? (double)sy0 - fy0 : 0.0;
        else if (yy == sy1) wy = (fy1 - sy1 > 1e-3) ? fmin(fy1 - (double)sy1, 1.0) : 0.0;
        else wy = 1.0;
        if (wy <= 0.0 || yy < 0 || yy >= ph) continue;
        for (int xx = sx0 - 1; xx <= sx1; ++xx) {
            double wx;
            if (xx == sx0 - 1) wx = (sx0 - fx0 > 1e-3) ? (double)sx0 - fx0 : 0.0;
            else if (xx == sx1) wx = (fx1 - sx1 > 1e-3) ? fmin(fx1 - (double)sx1, 1.0) : 0.0;
            else wx = 1.0;
            if (wx <= 0.0 || xx < 0 || xx >= pw) continue;
            acc += wx * wy * plane[(long long)yy * pitch + (long long)xx * step + ch];
            wsum += wx * wy;
        }
    }
    return wsum > 0.0 ? (float)(acc / wsum) : 0.f;
}

// Bilinear with half-pixel centres and edge clamping (resize), or constant border (warp).
__device__ float bilinear(const unsigned char* plane, long long pitch, int step, int ch, int pw, int ph,
                          float sx, float sy, int clamp_edges, float border) {
    float x0f = floorf(sx), y0f = floorf(sy);
    float fx = sx - x0f, fy = sy - y0f;
    int x0 = (int)x0f, y0 = (int)y0f;
    float v[4];
    for (int k = 0; k < 4; ++k) {
        int xx = x0 + (k & 1), yy = y0 + (k >> 1);
        if (clamp_edges) {
            xx = xx < 0 ? 0 : (xx > pw - 1 ? pw - 1 : xx);
            yy = yy < 0 ? 0 : (yy > ph - 1 ? ph - 1 : yy);
            v[k] = plane[(long long)yy * pitch + (long long)xx * step + ch];
        } else {
            v[k] = (xx < 0 || yy < 0 || xx >= pw || yy >= ph) ? border
                                                               : (float)plane[(long long)yy * pitch + (long long)xx * step + ch];
        }
    }
    return (1.f - fy) * ((1.f - fx) * v[0] + fx * v[1]) + fy * ((1.f - fx) * v[2] + fx * v[3]);
}

extern "C" __global__ void letterbox_nv12(const unsigned char* __restrict__ y, long long ypitch,
                                          const unsigned char* __restrict__ uv, long long uvpitch,
                                          int W, int H, int size, int nw, int nh, int px, int py, int down,
                                          unsigned char* __restrict__ cy, unsigned char* __restrict__ cuv) {
    int u = blockIdx.x * blockDim.x + threadIdx.x;
    int v = blockIdx.y * blockDim.y + threadIdx.y;
    if (u >= size || v >= size) return;
    // luma
    float Y = 16.f;
    int bx = u - px, by = v - py;
    if (bx >= 0 && by >= 0 && bx < nw && by < nh) {
        double sx = (double)W / nw, sy = (double)H / nh;
        if (down)
            Y = round_u8(area_sample(y, ypitch, 1, 0, W, H, bx * sx, fmin((bx + 1) * sx, (double)W),
                                     by * sy, fmin((by + 1) * sy, (double)H)));
        else
            Y = round_u8(bilinear(y, ypitch, 1, 0, W, H, (float)((bx + 0.5) * sx - 0.5), (float)((by + 0.5) * sy - 0.5), 1, 0.f));
    }
    cy[(long long)v * size + u] = (unsigned char)Y;
    // chroma (one thread per chroma sample)
    int half = size / 2;
    if (u >= half || v >= half) return;
    int cw = (nw + 1) / 2, chh = (nh + 1) / 2;
    int pw = W / 2, ph = H / 2;
    float U = 128.f, V = 128.f;
    int cx = u - px / 2, cyy = v - py / 2;
    if (cx >= 0 && cyy >= 0 && cx < cw && cyy < chh) {
        double sx = (double)pw / cw, sy = (double)ph / chh;
        if (down) {
            double ax0 = cx * sx, ax1 = fmin((cx + 1) * sx, (double)pw);
            double ay0 = cyy * sy, ay1 = fmin((cyy + 1) * sy, (double)ph);
            U = round_u8(area_sample(uv, uvpitch, 2, 0, pw, ph, ax0, ax1, ay0, ay1));
            V = round_u8(area_sample(uv, uvpitch, 2, 1, pw, ph, ax0, ax1, ay0, ay1));
        } else {
            float fx = (float)((cx + 0.5) * sx - 0.5), fy = (float)((cyy + 0.5) * sy - 0.5);
            U = round_u8(bilinear(uv, uvpitch, 2, 0, pw, ph, fx, fy, 1, 0.f));
            V = round_u8(bilinear(uv, uvpitch, 2, 1, pw, ph, fx, fy, 1, 0.f));
        }
    }
    cuv[((long long)v * half + u) * 2] = (unsigned char)U;
    cuv[((long long)v * half + u) * 2 + 1] = (unsigned char)V;
}

// m: luma map (2x3, row-major), mc: chroma map, both from crop pixel indices to plane pixel indices.
extern "C" __global__ void affine_nv12(const unsigned char* __restrict__ y, long long ypitch,
                                       const unsigned char* __restrict__ uv, long long uvpitch,
                                       int W, int H, int size,
                                       double m0, double m1, double m2, double m3, double m4, double m5,
                                       double c0, double c1, double c2, double c3, double c4, double c5,
                                       unsigned char* __restrict__ cy, unsigned char* __restrict__ cuv) {
    int u = blockIdx.x * blockDim.x + threadIdx.x;
    int v = blockIdx.y * blockDim.y + threadIdx.y;
    if (u >= size || v >= size) return;
    float sx = (float)(m0 * u + m1 * v + m2), sy = (float)(m3 * u + m4 * v + m5);
    cy[(long long)v * size + u] = (unsigned char)round_u8(bilinear(y, ypitch, 1, 0, W, H, sx, sy, 0, 16.f));
    int half = size / 2;
    if (u >= half || v >= half) return;
    float cx = (float)(c0 * u + c1 * v + c2), cyy = (float)(c3 * u + c4 * v + c5);
    cuv[((long long)v * half + u) * 2] = (unsigned char)round_u8(bilinear(uv, uvpitch, 2, 0, W / 2, H / 2, cx, cyy, 0, 128.f));
    cuv[((long long)v * half + u) * 2 + 1] = (unsigned char)round_u8(bilinear(uv, uvpitch, 2, 1, W / 2, H / 2, cx, cyy, 0, 128.f));
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
