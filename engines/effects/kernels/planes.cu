// Moving 8-bit NV12 samples into float32 work buffers and back (filters.to_u8 rounding).
//
// A region of a plane is addressed by its base pointer, row pitch in bytes, the element step
// between horizontal neighbours (1 for Y, 2 for one channel of interleaved UV) and the channel
// offset. load_u8: dst[y, x] = plane[y0 + y, (x0 + x) * step + ch]. store_u8 writes
// floor(v + 0.5) clamped to 0..255 back to the same places.

extern "C" __global__ void load_u8(const unsigned char* __restrict__ plane, long long pitch, int step, int ch,
                                   int x0, int y0, int w, int h, float* __restrict__ dst) {
    int x = blockIdx.x * blockDim.x + threadIdx.x;
    int y = blockIdx.y * blockDim.y + threadIdx.y;
    if (x >= w || y >= h) return;
    dst[(long long)y * w + x] = (float)plane[(long long)(y0 + y) * pitch + (long long)(x0 + x) * step + ch];
}

extern "C" __global__ void store_u8(unsigned char* __restrict__ plane, long long pitch, int step, int ch,
                                    int x0, int y0, int w, int h, const float* __restrict__ src) {
    int x = blockIdx.x * blockDim.x + threadIdx.x;
    int y = blockIdx.y * blockDim.y + threadIdx.y;
    if (x >= w || y >= h) return;
    float v = floorf(src[(long long)y * w + x] + 0.5f);
    v = fminf(fmaxf(v, 0.f), 255.f);
    plane[(long long)(y0 + y) * pitch + (long long)(x0 + x) * step + ch] = (unsigned char)v;
}
