// Model inputs cut straight from NV12, as engines/vision/resample.py (InputMaker) makes them:
// one resample per plane into an 8-bit YUV value (rounded to nearest, as OpenCV's uint8 output),
// then YUV -> normalised RGB with the 3x4 matrix `mat` (rgb_c = mat[c,0] Y + mat[c,1] U + mat[c,2] V
// + mat[c,3]), written as planar CHW float32 into `out` (one batch slot, 3 * size * size floats).
//
// letterbox: the frame scaled by (nw / W, nh / H) into the nw x nh box at (px, py); the rest is
//   black (16, 128, 128). Downscaling integrates pixel areas (cv2.INTER_AREA); upscaling is
//   bilinear with half-pixel centres (cv2.INTER_LINEAR). Chroma is resampled from the half
//   resolution plane straight to the box size.
// affine: out pixel (u, v) samples the frame at M (u, v, 1) (luma, pixel-index coordinates) and at
//   Mc (u, v, 1) on the chroma plane, bilinear, outside the plane black (cv2.warpAffine with
//   WARP_INVERSE_MAP and BORDER_CONSTANT).

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

__device__ __forceinline__ void write_rgb(float* out, const float* mat, int size, int u, int v, float Y, float U, float V) {
    long long plane = (long long)size * size;
    long long i = (long long)v * size + u;
    for (int c = 0; c < 3; ++c)
        out[c * plane + i] = mat[4 * c] * Y + mat[4 * c + 1] * U + mat[4 * c + 2] * V + mat[4 * c + 3];
}

extern "C" __global__ void letterbox(const unsigned char* __restrict__ y, long long ypitch,
                                     const unsigned char* __restrict__ uv, long long uvpitch,
                                     int W, int H, int size, int nw, int nh, int px, int py,
                                     const float* __restrict__ mat, float* __restrict__ out) {
    int u = blockIdx.x * blockDim.x + threadIdx.x;
    int v = blockIdx.y * blockDim.y + threadIdx.y;
    if (u >= size || v >= size) return;
    float Y = 16.f, U = 128.f, V = 128.f;
    int bx = u - px, by = v - py;
    if (bx >= 0 && by >= 0 && bx < nw && by < nh) {
        int cw = W / 2, ch = H / 2;
        bool down = (double)nw / W < 1.0 || (double)nh / H < 1.0;
        if (down) {
            double sx = (double)W / nw, sy = (double)H / nh;
            Y = round_u8(area_sample(y, ypitch, 1, 0, W, H, bx * sx, fmin((bx + 1) * sx, (double)W),
                                     by * sy, fmin((by + 1) * sy, (double)H)));
            double cx = (double)cw / nw, cy = (double)ch / nh;
            if (cx >= 1.0 && cy >= 1.0) {
                double ax0 = bx * cx, ax1 = fmin((bx + 1) * cx, (double)cw);
                double ay0 = by * cy, ay1 = fmin((by + 1) * cy, (double)ch);
                U = round_u8(area_sample(uv, uvpitch, 2, 0, cw, ch, ax0, ax1, ay0, ay1));
                V = round_u8(area_sample(uv, uvpitch, 2, 1, cw, ch, ax0, ax1, ay0, ay1));
            } else {
                float sxc = (bx + 0.5f) * (float)cx - 0.5f, syc = (by + 0.5f) * (float)cy - 0.5f;
                U = round_u8(bilinear(uv, uvpitch, 2, 0, cw, ch, sxc, syc, 1, 0.f));
                V = round_u8(bilinear(uv, uvpitch, 2, 1, cw, ch, sxc, syc, 1, 0.f));
            }
        } else {
            float sx = (bx + 0.5f) * (float)W / nw - 0.5f, sy = (by + 0.5f) * (float)H / nh - 0.5f;
            Y = round_u8(bilinear(y, ypitch, 1, 0, W, H, sx, sy, 1, 0.f));
            float sxc = (bx + 0.5f) * (float)cw / nw - 0.5f, syc = (by + 0.5f) * (float)ch / nh - 0.5f;
            U = round_u8(bilinear(uv, uvpitch, 2, 0, cw, ch, sxc, syc, 1, 0.f));
            V = round_u8(bilinear(uv, uvpitch, 2, 1, cw, ch, sxc, syc, 1, 0.f));
        }
    }
    write_rgb(out, mat, size, u, v, Y, U, V);
}

// m: luma affine (2x3, row-major, pixel-index coordinates); mc: the same for the chroma plane.
extern "C" __global__ void affine(const unsigned char* __restrict__ y, long long ypitch,
                                  const unsigned char* __restrict__ uv, long long uvpitch,
                                  int W, int H, int size,
                                  double m0, double m1, double m2, double m3, double m4, double m5,
                                  double c0, double c1, double c2, double c3, double c4, double c5,
                                  const float* __restrict__ mat, float* __restrict__ out) {
    int u = blockIdx.x * blockDim.x + threadIdx.x;
    int v = blockIdx.y * blockDim.y + threadIdx.y;
    if (u >= size || v >= size) return;
    float sx = (float)(m0 * u + m1 * v + m2), sy = (float)(m3 * u + m4 * v + m5);
    float Y = round_u8(bilinear(y, ypitch, 1, 0, W, H, sx, sy, 0, 16.f));
    float cx = (float)(c0 * u + c1 * v + c2), cy = (float)(c3 * u + c4 * v + c5);
    float U = round_u8(bilinear(uv, uvpitch, 2, 0, W / 2, H / 2, cx, cy, 0, 128.f));
    float V = round_u8(bilinear(uv, uvpitch, 2, 1, W / 2, H / 2, cx, cy, 0, 128.f));
    write_rgb(out, mat, size, u, v, Y, U, V);
}
