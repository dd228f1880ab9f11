// NV12 -> planar RGB for the GPU JPEG encoder (engines/codec/gpu_jpeg.py).
//
// The arithmetic is OpenCV's fixed-point BT.601 limited-range conversion (cv2.COLOR_YUV2RGB_NV12),
// the conversion the CPU side of the pipeline uses for NV12 pictures: each pixel takes the chroma
// sample of its 2x2 block, y' = max(0, Y - 16) * CY, then R, G, B = (y' + chroma term + 2^19) >> 20
// clamped to 0..255, with CY = 1.164 * 2^20, CVR = 1.596 * 2^20, CVG = -0.813 * 2^20,
// CUG = -0.391 * 2^20, CUB = 2.018 * 2^20 (rounded as OpenCV rounds them).
//
// nv12_to_rgb_planar: one thread per pixel of the width x height picture; the planes may be wider
// or taller than the picture (an odd-sized picture is carried with one repeated column or row),
// hence the pitches. rgb is three contiguous width x height planes (CHW), as nvJPEG reads them.

#define FS_BT601_CY 1220542
#define FS_BT601_CUB 2116026
#define FS_BT601_CUG -409993
#define FS_BT601_CVG -852492
#define FS_BT601_CVR 1673527
#define FS_BT601_SHIFT 20

__device__ __forceinline__ unsigned char fs_clamp_u8(int v) {
    return (unsigned char)(v < 0 ? 0 : (v > 255 ? 255 : v));
}

extern "C" __global__ void nv12_to_rgb_planar(const unsigned char* __restrict__ y_plane, long long y_pitch,
                                              const unsigned char* __restrict__ uv_plane, long long uv_pitch,
                                              int width, int height, unsigned char* __restrict__ rgb) {
    int x = blockIdx.x * blockDim.x + threadIdx.x;
    int y = blockIdx.y * blockDim.y + threadIdx.y;
    if (x >= width || y >= height) return;
    const unsigned char* uv = uv_plane + (long long)(y >> 1) * uv_pitch + (long long)(x >> 1) * 2;
    int u = (int)uv[0] - 128;
    int v = (int)uv[1] - 128;
    int half = 1 << (FS_BT601_SHIFT - 1);
    int luma = max(0, (int)y_plane[(long long)y * y_pitch + x] - 16) * FS_BT601_CY;
    long long plane = (long long)width * height;
    long long at = (long long)y * width + x;
    rgb[at] = fs_clamp_u8((luma + half + FS_BT601_CVR * v) >> FS_BT601_SHIFT);
    rgb[plane + at] = fs_clamp_u8((luma + half + FS_BT601_CVG * v + FS_BT601_CUG * u) >> FS_BT601_SHIFT);
    rgb[2 * plane + at] = fs_clamp_u8((luma + half + FS_BT601_CUB * u) >> FS_BT601_SHIFT);
}
