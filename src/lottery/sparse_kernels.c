/* Kernels of the sparse training path (lottery.native): a pruned layer's surviving weights
 * as a blocked CSR matrix, activations stored tile-major with the examples as the inner, contiguous
 * dimension: a[(t * units + u) * TILE + l] is unit u of example t * TILE + l, lanes past the last
 * example kept zero. A training batch (up to 64 examples) is one tile; an evaluation set is many,
 * each tile's rows contiguous, so a pass over a set reads it in order.
 *
 * Every loop over examples runs TILE independent lanes, so the compiler vectorises it without
 * reordering a sum (no -ffast-math): the result of each function is fixed by its inputs, run to run.
 * A weight costs one multiply-add per example, whatever the layer's shape: the work follows the
 * weights that survive. Single-threaded; built by lottery.kernels at first use.
 *
 * The same bits on every x86-64 machine, whichever build flavour (-march=x86-64 ... x86-64-v4,
 * native: lottery.kernels) and whichever C library:
 * - GCC's generic vectors (vector_size(64)) do the same arithmetic per lane whether a vector is four
 *   SSE registers, two AVX2 ones or one AVX-512 one; every sum across lanes (hsum) names its lanes in
 *   a fixed order, and the loops over examples sum no lanes together.
 * - No fused multiply-add anywhere: built with -ffp-contract=off (and in ISO C mode, whose default
 *   is off too), and no fma()/fmaf() or intrinsic is called. So a multiply-add rounds twice in every
 *   flavour, FMA or not.
 * - exp, log and the bias corrections' powers are this file's own (lt_expf, lt_logf, lt_pow):
 *   libm's are picked at run time by the CPU (glibc's ifuncs take an FMA variant where the CPU has
 *   one) and differ between C libraries. sqrt is IEEE's correctly rounded one (an instruction).
 *   Nothing is called from libm.
 */
#include <stdint.h>

#define TILE 64 /* examples per tile: four vectors of 16 floats */
#define ROW(a, t, units, u) ((a) + ((int64_t)(t) * (units) + (u)) * TILE)

/* 16 floats (one AVX-512 register, two AVX2 ones); aligned(4): loads need no alignment. */
typedef float vf __attribute__((vector_size(64), aligned(4)));
typedef float vf8 __attribute__((vector_size(32)));
typedef float vf4 __attribute__((vector_size(16)));
typedef float vf4u __attribute__((vector_size(16), aligned(4))); /* a store anywhere */
typedef float vf8u __attribute__((vector_size(32), aligned(4)));
typedef int32_t vi8 __attribute__((vector_size(32)));

/* The machine's own vectors (VW floats: 16 with AVX-512, 8 with AVX, 4 with SSE), chosen from the
 * build flavour. The forward pass and the input gradient hold a whole tile's 64 lanes (or 64
 * outputs) in LANES registers, one chain per lane: 8 of AVX2's 16 registers, 4 of AVX-512's 32.
 * Each entry's column index and value are loaded once for all 64 lanes (two passes of 32 lanes
 * each loaded them twice, and two chains of even and odd entries split the sum: slower on an AVX2
 * Zen 3 in an interleaved comparison, commit c30033b). A 16-float vector on AVX2 is two registers, and eight chains of them
 * with their operands spilled to the stack (13x slower on that Zen 3). The width decides how many
 * lanes a register holds, never the order of a sum: each lane (example, or output) is its own
 * chain, its entries summed one after the other in the same order in every flavour. */
#if defined(__AVX512F__)
#define VW 16
#elif defined(__AVX__)
#define VW 8
#else
#define VW 4
#endif
#define NV 4
#define PASS (VW * NV) /* lanes of a pass of the first layer's weight gradient: divides TILE */
#define LANES (TILE / VW) /* machine vectors in a tile's 64 lanes */
/* With AVX-512 a tile is 4 registers: one chain of them waits on the adder's latency (4 cycles on
 * Intel) every entry, so two rows (or columns) run side by side, 8 chains; with AVX2 a tile is
 * already 8 registers, and two would spill. Each row's sum keeps its order: the same bits either
 * way (tests/test_flavours.py builds both; -DLT_PAIRS=0/1 overrides). */
#ifdef LT_PAIRS
#define PAIRS LT_PAIRS
#else
#define PAIRS (VW == 16)
#endif
typedef float vn __attribute__((vector_size(VW * 4), aligned(4)));
typedef int32_t vni __attribute__((vector_size(VW * 4), aligned(4)));
static inline vn ldn(const float *p) { return *(const vn *)p; }
static inline void stn(float *p, vn v) { *(vn *)p = v; }
static inline vn splatn(float x) { return (vn){0} + x; }
static inline vn relun(vn v) { return (vn)((vni)v & ~(v < 0.0f)); }
/* v where keep > 0, else 0 (ReLU and its backward, bitwise: NaN in v passes through). */
static inline vn where_positiven(vn keep, vn v) { return (vn)((vni)v & (keep > 0.0f)); }
#define L16 (16 / VW) /* machine vectors in 16 lanes */

static inline vf ld(const float *p) { return *(const vf *)p; }
static inline void st(float *p, vf v) { *(vf *)p = v; }
/* The 16 lanes' sum, in a fixed order. */
static inline float hsum(vf v) {
    vf8 a = __builtin_shufflevector(v, v, 0, 1, 2, 3, 4, 5, 6, 7) +
            __builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15);
    vf4 b = __builtin_shufflevector(a, a, 0, 1, 2, 3) + __builtin_shufflevector(a, a, 4, 5, 6, 7);
    return (b[0] + b[2]) + (b[1] + b[3]);
}

/* ---------------------------------------------------------------- exp, log and pow of our own
 * Computed in double and rounded once to float: lt_expf and lt_logf are correctly rounded but where
 * the exact value lies within about 1e-16 (relative) of a midpoint between two floats, so their
 * error is at most half an ulp plus that (relative error < 5.97e-8; measured against Python's
 * math.exp and math.log by tests/test_flavours.py). Every step is an IEEE operation in double on
 * its own (no contraction, no reassociation), so the result is the same bits on every machine. */
static inline double as_double(uint64_t u) {
    union { uint64_t u; double d; } v = {.u = u};
    return v.d;
}
static inline uint64_t as_bits(double d) {
    union { double d; uint64_t u; } v = {.d = d};
    return v.u;
}
/* ln 2 in two parts: LN2_HI has 21 trailing zero bits, so k * LN2_HI is exact for |k| < 2^21. */
#define LN2_HI 6.93147180369123816490e-01
#define LN2_LO 1.90821492927058770002e-10
#define INV_LN2 1.44269504088896338700e+00
#define ROUND_SHIFT 6755399441055744.0 /* 1.5 * 2^52: x + it - it is x rounded to an integer */

/* exp(x) for x in [-150, 100] (double): x = k ln2 + r, |r| <= ln2 / 2, exp(r) by its Taylor series to
 * r^13 (the rest < 6e-18 relative), times 2^k made from its bits. */
static double exp_reduced(double x) {
    const double k = (x * INV_LN2 + ROUND_SHIFT) - ROUND_SHIFT;
    const double r = (x - k * LN2_HI) - k * LN2_LO;
    double p = 1.0 / 6227020800.0; /* 1/13! */
    p = p * r + 1.0 / 479001600.0;
    p = p * r + 1.0 / 39916800.0;
    p = p * r + 1.0 / 3628800.0;
    p = p * r + 1.0 / 362880.0;
    p = p * r + 1.0 / 40320.0;
    p = p * r + 1.0 / 5040.0;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    p = p * r + 1.0;
    p = p * r + 1.0;
    return p * as_double((uint64_t)((int64_t)k + 1023) << 52);
}

/* e^x as a float: 0 below -150 (under half the smallest subnormal), inf above 100, NaN for NaN. */
static inline float lt_expf(float x) {
    if (x != x) return x;
    if (x < -150.0f) return 0.0f;
    if (x > 100.0f) return __builtin_inff();
    return (float)exp_reduced((double)x);
}

/* ln(x) as a float: x = 2^e m, m in [sqrt(1/2), sqrt(2)), ln m = 2 atanh(f) with f = (m - 1) / (m + 1),
 * |f| <= 0.1716, by its series to f^21 (the rest < 1e-18 relative). */
static inline float lt_logf(float x) {
    if (x != x || x < 0.0f) return __builtin_nanf("");
    if (x == 0.0f) return -__builtin_inff();
    if (x == __builtin_inff()) return x;
    const uint64_t bits = as_bits((double)x); /* a float, even a subnormal one, is a normal double */
    int64_t e = (int64_t)((bits >> 52) & 0x7ff) - 1023;
    double m = as_double((bits & 0x000fffffffffffffULL) | 0x3ff0000000000000ULL); /* [1, 2) */
    if (m > 1.41421356237309504880) m *= 0.5, e += 1;
    const double f = (m - 1.0) / (m + 1.0), f2 = f * f;
    double s = 1.0 / 21.0;
    s = s * f2 + 1.0 / 19.0;
    s = s * f2 + 1.0 / 17.0;
    s = s * f2 + 1.0 / 15.0;
    s = s * f2 + 1.0 / 13.0;
    s = s * f2 + 1.0 / 11.0;
    s = s * f2 + 1.0 / 9.0;
    s = s * f2 + 1.0 / 7.0;
    s = s * f2 + 1.0 / 5.0;
    s = s * f2 + 1.0 / 3.0;
    s = s * f2 + 1.0;
    const double ln_m = 2.0 * f * s;
    return (float)((double)e * LN2_HI + ((double)e * LN2_LO + ln_m));
}

/* Exact products and sums of doubles (Dekker, Knuth: no fused multiply-add needed), for lt_pow. */
typedef struct {
    double hi, lo;
} dd;
static inline dd two_prod(double a, double b) {
    const double split = 134217729.0; /* 2^27 + 1 */
    const double p = a * b;
    const double ca = split * a, cb = split * b;
    const double ah = ca - (ca - a), al = a - ah, bh = cb - (cb - b), bl = b - bh;
    return (dd){p, ((ah * bh - p) + ah * bl + al * bh) + al * bl};
}
static inline dd dd_mul(dd x, dd y) {
    dd p = two_prod(x.hi, y.hi);
    const double lo = p.lo + (x.hi * y.lo + x.lo * y.hi);
    const double hi = p.hi + lo;
    return (dd){hi, lo - (hi - p.hi)};
}

/* b^n for 0 <= b <= 1 and n >= 0, by squaring in double-double (about 100 bits), rounded once: the
 * correctly rounded power but where it lies within about 2^-95 of a midpoint, as libm's pow gives it
 * (to 0.52 ulp), on every machine. A power below 2^-200 is returned as 0 (1 - b^n is 1 for it all
 * the same), so that no partial product is ever subnormal. */
static double lt_pow(double b, int64_t n) {
    dd result = {1.0, 0.0}, square = {b, 0.0};
    while (n > 0) {
        if (n & 1) result = dd_mul(result, square);
        n >>= 1;
        if (result.hi < 0x1p-200) return 0.0;
        if (n) {
            if (square.hi < 0x1p-200) return 0.0; /* the rest multiplies result by less than it */
            square = dd_mul(square, square);
        }
    }
    return result.hi + result.lo;
}

/* y[i] = e^x[i], and ln x[i]: lt_expf and lt_logf, for the tests. */
void lt_expf_array(int64_t n, const float *x, float *y) {
    for (int64_t i = 0; i < n; i++) y[i] = lt_expf(x[i]);
}
void lt_logf_array(int64_t n, const float *x, float *y) {
    for (int64_t i = 0; i < n; i++) y[i] = lt_logf(x[i]);
}
/* b^n (lt_pow), for the tests. */
double lt_pow_test(double b, int64_t n) { return lt_pow(b, n); }

/* XT (npix rows, tile-major) = examples idx[0..B) of X (rows of D features), only the features
 * pixels[] (NULL: all D): a minibatch or an evaluation set gathered and transposed. Each example's
 * row is read whole, front to back, so that the hardware prefetcher streams it from memory: reading
 * every row a cache line at a time, row after row, waited on one memory latency per line (one
 * example's 784 features are 49 lines: 250-320 µs a batch of 60 on a Zen 3). The tile being
 * written (npix x 64 floats, 200 KB for 784 pixels) stays in L2 meanwhile. A copy: no arithmetic. */
void lt_gather(const float *X, int64_t D, const int64_t *idx, int64_t B, const int32_t *pixels,
               int64_t npix, float *XT) {
    for (int64_t b = 0; b < B; b++) {
        const float *row = X + idx[b] * D;
        float *out = ROW(XT, b / TILE, npix, 0) + b % TILE;
        if (b + 1 < B) { /* the next row, while this one is copied */
            const char *next = (const char *)(X + idx[b + 1] * D);
            for (int64_t k = 0; k < D * 4; k += 64) __builtin_prefetch(next + k);
        }
        if (pixels) {
            for (int64_t j = 0; j < npix; j++) out[j * TILE] = row[pixels[j]];
        } else {
            for (int64_t j = 0; j < npix; j++) out[j * TILE] = row[j];
        }
    }
}

/* YT (out rows) = W XT (in rows) + bias, then ReLU where relu_out != 0, over ntiles tiles. W in
 * blocked CSR: the entries of input block k (lottery.native.BLOCK features) and output row
 * o are rowptr[k * out + o] up to rowptr[k * out + o + 1] of (col, val). A block's rows of XT stay
 * in L1 while every output row reads them; each row's sum carries over from block to block.
 * ahead (NULL: none): ahead_bytes the caller reads next (an evaluation set's next tile), fetched
 * into the cache a few lines an output row meanwhile: a sparse layer reads its input tile's rows
 * in no order the hardware prefetcher can follow, so a tile read from memory otherwise waits on
 * one memory latency after another. A hint only: no result depends on it. */
void lt_forward(int64_t out, int64_t in, int64_t nblocks, const int32_t *rowptr, const int32_t *col,
                const float *val, const float *bias, const float *XT, int64_t ntiles, float *YT,
                int32_t relu_out, const float *ahead, int64_t ahead_bytes) {
    const char *next = (const char *)ahead, *next_end = next + (ahead ? ahead_bytes : 0);
    const int64_t rows = ntiles * nblocks * out; /* output rows to spread it over */
    const int64_t per_row = rows ? (ahead_bytes / 64 + rows - 1) / rows * 64 : 0;
    for (int64_t t = 0; t < ntiles; t++)
    for (int64_t blk = 0; blk < nblocks; blk++) {
        const int32_t *rp = rowptr + blk * out;
        const int32_t last_block = blk == nblocks - 1;
        const float *xt = ROW(XT, t, in, 0);
        int64_t o = 0;
#if PAIRS
        for (; o + 1 < out; o += 2) { /* rows o and o + 1 side by side: two chains (see PAIRS) */
            for (const char *stop = next + 2 * per_row; next < next_end && next < stop; next += 64)
                __builtin_prefetch(next);
            float *y = ROW(YT, t, out, o), *z = y + TILE;
            vn a[LANES], b[LANES];
            for (int q = 0; q < LANES; q++) {
                a[q] = blk == 0 ? splatn(bias[o]) : ldn(y + q * VW);
                b[q] = blk == 0 ? splatn(bias[o + 1]) : ldn(z + q * VW);
            }
            int32_t j = rp[o], k = rp[o + 1];
            const int32_t j_end = rp[o + 1], k_end = rp[o + 2];
            for (; j < j_end && k < k_end; j++, k++) {
                const vn v = splatn(val[j]), w = splatn(val[k]);
                const float *x = xt + (int64_t)col[j] * TILE, *u = xt + (int64_t)col[k] * TILE;
                for (int q = 0; q < LANES; q++) a[q] += v * ldn(x + q * VW), b[q] += w * ldn(u + q * VW);
            }
            for (; j < j_end; j++) {
                const vn v = splatn(val[j]);
                const float *x = xt + (int64_t)col[j] * TILE;
                for (int q = 0; q < LANES; q++) a[q] += v * ldn(x + q * VW);
            }
            for (; k < k_end; k++) {
                const vn w = splatn(val[k]);
                const float *u = xt + (int64_t)col[k] * TILE;
                for (int q = 0; q < LANES; q++) b[q] += w * ldn(u + q * VW);
            }
            for (int q = 0; q < LANES; q++) {
                stn(y + q * VW, relu_out && last_block ? relun(a[q]) : a[q]);
                stn(z + q * VW, relu_out && last_block ? relun(b[q]) : b[q]);
            }
        }
#endif
        for (; o < out; o++) {
            for (const char *stop = next + per_row; next < next_end && next < stop; next += 64)
                __builtin_prefetch(next);
            float *y = ROW(YT, t, out, o);
            vn a[LANES];
            for (int q = 0; q < LANES; q++) a[q] = blk == 0 ? splatn(bias[o]) : ldn(y + q * VW);
            for (int32_t j = rp[o]; j < rp[o + 1]; j++) {
                const vn v = splatn(val[j]);
                const float *x = xt + (int64_t)col[j] * TILE;
                for (int q = 0; q < LANES; q++) a[q] += v * ldn(x + q * VW);
            }
            for (int q = 0; q < LANES; q++) stn(y + q * VW, relu_out && last_block ? relun(a[q]) : a[q]);
        }
    }
}

/* Softmax cross-entropy of example b's logits (C classes, tile-major ZT) for label y: its loss,
 * and where g is given its gradient w.r.t. the logits (softmax - onehot). */
static inline float xent(int64_t C, const float *ZT, int64_t b, int64_t y, float *g) {
    const float *z = ROW(ZT, b / TILE, C, 0) + b % TILE;
    float m = z[0];
    for (int64_t c = 1; c < C; c++) m = z[c * TILE] > m ? z[c * TILE] : m;
    float s = 0.0f;
    for (int64_t c = 0; c < C; c++) s += lt_expf(z[c * TILE] - m);
    const float lse = m + lt_logf(s);
    if (g)
        for (int64_t c = 0; c < C; c++) g[c * TILE] = lt_expf(z[c * TILE] - lse) - (c == y ? 1.0f : 0.0f);
    return lse - z[y * TILE];
}

/* Summed softmax cross-entropy of the B examples (one tile) whose labels are labels[idx[b]]; GT =
 * its gradient w.r.t. the logits, zero past B. */
double lt_softmax_xent(int64_t C, const float *ZT, int64_t B, const int64_t *labels, const int64_t *idx,
                       float *GT) {
    double loss = 0.0;
    const int64_t P = (B + TILE - 1) / TILE * TILE;
    for (int64_t b = 0; b < B; b++)
        loss += (double)xent(C, ZT, b, labels[idx[b]], ROW(GT, b / TILE, C, 0) + b % TILE);
    for (int64_t b = B; b < P; b++)
        for (int64_t c = 0; c < C; c++) ROW(GT, b / TILE, C, c)[b % TILE] = 0.0f;
    return loss;
}

/* An evaluation: the summed cross-entropy of n examples (into *loss) and how many are classified
 * right (the first class of largest logit, as torch.argmax). */
int64_t lt_evaluate(int64_t C, const float *ZT, int64_t n, const int64_t *labels, double *loss) {
    double total = 0.0;
    int64_t correct = 0;
    for (int64_t b = 0; b < n; b++) {
        const float *z = ROW(ZT, b / TILE, C, 0) + b % TILE;
        int64_t best = 0;
        for (int64_t c = 1; c < C; c++)
            if (z[c * TILE] > z[best * TILE]) best = c;
        correct += best == labels[b];
        total += (double)xent(C, ZT, b, labels[b], 0);
    }
    *loss = total;
    return correct;
}

/* Gradients of the surviving weights (grad[j] = GT[row j] . XT[col j] over every tile), W in
 * blocked CSR as for lt_forward, and of the biases. */
/* The 16 partial sums of row o of GT (g: its first tile, as 4 * L16 machine vectors) and row k of XT (x: its first tile) over
 * every tile, as lt_weight_grad's grad[j] needs them (into s: L16 machine vectors). */
static inline void dot16(const vn *g, const float *x, const float *GT, const float *XT, int64_t out,
                         int64_t in, int64_t o, int64_t k, int64_t ntiles, vn *s) {
    vn a0[L16], a1[L16];
    for (int i = 0; i < L16; i++) {
        a0[i] = g[i] * ldn(x + i * VW), a1[i] = g[L16 + i] * ldn(x + 16 + i * VW);
        a0[i] += g[2 * L16 + i] * ldn(x + 32 + i * VW);
        a1[i] += g[3 * L16 + i] * ldn(x + 48 + i * VW);
    }
    for (int64_t t = 1; t < ntiles; t++) {
        const float *gt = ROW(GT, t, out, o), *xt = ROW(XT, t, in, k);
        for (int i = 0; i < L16; i++) {
            a0[i] += ldn(gt + i * VW) * ldn(xt + i * VW);
            a1[i] += ldn(gt + 16 + i * VW) * ldn(xt + 16 + i * VW);
            a0[i] += ldn(gt + 32 + i * VW) * ldn(xt + 32 + i * VW);
            a1[i] += ldn(gt + 48 + i * VW) * ldn(xt + 48 + i * VW);
        }
    }
    for (int i = 0; i < L16; i++) s[i] = a0[i] + a1[i];
}

/* hsum's first two steps on 16 lanes held as L16 machine vectors: lane i of the result is
 * (v[i] + v[i + 8]) + (v[i + 4] + v[i + 12]); hsum's last step is (r[0] + r[2]) + (r[1] + r[3]). */
static inline vf4 quarter16(const vn *v) {
#if VW == 16
    const vf8 h = __builtin_shufflevector(v[0], v[0], 0, 1, 2, 3, 4, 5, 6, 7) +
                  __builtin_shufflevector(v[0], v[0], 8, 9, 10, 11, 12, 13, 14, 15);
    return __builtin_shufflevector(h, h, 0, 1, 2, 3) + __builtin_shufflevector(h, h, 4, 5, 6, 7);
#elif VW == 8
    const vf8 h = (vf8)v[0] + (vf8)v[1];
    return __builtin_shufflevector(h, h, 0, 1, 2, 3) + __builtin_shufflevector(h, h, 4, 5, 6, 7);
#else
    return (vf4)(v[0] + v[2]) + (vf4)(v[1] + v[3]);
#endif
}

void lt_weight_grad(int64_t out, int64_t in, int64_t nblocks, const int32_t *rowptr, const int32_t *col,
                    const float *GT, const float *XT, int64_t ntiles, float *grad, float *bias_grad) {
    for (int64_t o = 0; o < out; o++) {
        vf s = {0};
        for (int64_t t = 0; t < ntiles; t++) {
            const float *g = ROW(GT, t, out, o);
            s += (ld(g) + ld(g + 16)) + (ld(g + 32) + ld(g + 48));
        }
        bias_grad[o] = hsum(s);
    }
    /* grad[j]: a dot product of 64 lanes a tile, as 16 partial sums (lane q: lanes q and q + 32 of
     * each tile, then q + 16 and q + 48) summed as hsum does; the 16 are L16 machine vectors. Four
     * entries' sums are finished together (quarter16, then a 4 x 4 transpose): the same order. */
    for (int64_t blk = 0; blk < nblocks; blk++) {
        const int32_t *rp = rowptr + blk * out;
        for (int64_t o = 0; o < out; o++) {
            vn g[4 * L16]; /* row o's first tile, in registers for every entry */
            for (int i = 0; i < 4 * L16; i++) g[i] = ldn(ROW(GT, 0, out, o) + i * VW);
            int32_t j = rp[o];
            const int32_t end = rp[o + 1];
            for (; j + 3 < end; j += 4) {
                vf4 q[4];
                for (int e = 0; e < 4; e++) {
                    vn s[L16];
                    dot16(g, ROW(XT, 0, in, col[j + e]), GT, XT, out, in, o, col[j + e], ntiles, s);
                    q[e] = quarter16(s);
                }
                const vf4 t0 = __builtin_shufflevector(q[0], q[1], 0, 4, 1, 5);
                const vf4 t1 = __builtin_shufflevector(q[0], q[1], 2, 6, 3, 7);
                const vf4 t2 = __builtin_shufflevector(q[2], q[3], 0, 4, 1, 5);
                const vf4 t3 = __builtin_shufflevector(q[2], q[3], 2, 6, 3, 7);
                const vf4 c0 = __builtin_shufflevector(t0, t2, 0, 1, 4, 5); /* lane 0 of each entry */
                const vf4 c1 = __builtin_shufflevector(t0, t2, 2, 3, 6, 7);
                const vf4 c2 = __builtin_shufflevector(t1, t3, 0, 1, 4, 5);
                const vf4 c3 = __builtin_shufflevector(t1, t3, 2, 3, 6, 7);
                *(vf4u *)(grad + j) = (c0 + c2) + (c1 + c3);
            }
            for (; j < end; j++) {
                vn s[L16];
                dot16(g, ROW(XT, 0, in, col[j]), GT, XT, out, in, o, col[j], ntiles, s);
                const vf4 q = quarter16(s);
                grad[j] = (q[0] + q[2]) + (q[1] + q[3]);
            }
        }
    }
}

/* DXT (in rows) = (W^T GT) where XT > 0, else 0: the gradient w.r.t. this layer's input (a ReLU's
 * output), W by its columns (colptr, rows, perm: each entry's position in the CSR values). */
void lt_input_grad(int64_t in, int64_t out, const int32_t *colptr, const int32_t *rows, const int32_t *perm,
                   const float *val, const float *GT, const float *XT, int64_t ntiles, float *DXT) {
    for (int64_t t = 0; t < ntiles; t++) {
        const float *gt = ROW(GT, t, out, 0);
        int64_t k = 0;
#if PAIRS
        for (; k + 1 < in; k += 2) { /* columns k and k + 1 side by side: two chains (see PAIRS) */
            vn a[LANES], b[LANES];
            for (int q = 0; q < LANES; q++) a[q] = (vn){0}, b[q] = (vn){0};
            int32_t j = colptr[k], i = colptr[k + 1];
            const int32_t j_end = colptr[k + 1], i_end = colptr[k + 2];
            for (; j < j_end && i < i_end; j++, i++) {
                const vn v = splatn(val[perm[j]]), w = splatn(val[perm[i]]);
                const float *g = gt + (int64_t)rows[j] * TILE, *h = gt + (int64_t)rows[i] * TILE;
                for (int q = 0; q < LANES; q++) a[q] += v * ldn(g + q * VW), b[q] += w * ldn(h + q * VW);
            }
            for (; j < j_end; j++) {
                const vn v = splatn(val[perm[j]]);
                const float *g = gt + (int64_t)rows[j] * TILE;
                for (int q = 0; q < LANES; q++) a[q] += v * ldn(g + q * VW);
            }
            for (; i < i_end; i++) {
                const vn w = splatn(val[perm[i]]);
                const float *h = gt + (int64_t)rows[i] * TILE;
                for (int q = 0; q < LANES; q++) b[q] += w * ldn(h + q * VW);
            }
            const float *x = ROW(XT, t, in, k);
            float *d = ROW(DXT, t, in, k);
            for (int q = 0; q < LANES; q++) {
                stn(d + q * VW, where_positiven(ldn(x + q * VW), a[q]));
                stn(d + TILE + q * VW, where_positiven(ldn(x + TILE + q * VW), b[q]));
            }
        }
#endif
        for (; k < in; k++) {
            vn a[LANES];
            for (int q = 0; q < LANES; q++) a[q] = (vn){0};
            for (int32_t j = colptr[k]; j < colptr[k + 1]; j++) {
                const vn v = splatn(val[perm[j]]);
                const float *g = gt + (int64_t)rows[j] * TILE;
                for (int q = 0; q < LANES; q++) a[q] += v * ldn(g + q * VW);
            }
            const float *x = ROW(XT, t, in, k);
            float *d = ROW(DXT, t, in, k);
            for (int q = 0; q < LANES; q++) stn(d + q * VW, where_positiven(ldn(x + q * VW), a[q]));
        }
    }
}

/* A dense first layer that reads only each example's non-blank inputs. x = background + d, d zero
 * at most inputs (81% of MNIST's pixels), so W x + bias = W d + (bias + background * W 1), and W d
 * needs only the weights of the inputs where d is not zero. WT is W transposed (row k: input k's
 * out weights). Example b's non-zero deviations are entries offsets[idx[b]] up to
 * offsets[idx[b] + 1] of (columns, values), sorted by input. A tile of up to TILE examples at a
 * time, CHUNK outputs at a time. The weight gradient sorts the tile's entries by input (a counting
 * sort into ptr/ex/dev) and sums each input's gradient in registers over the examples that have it. */
#define CHUNK 64

typedef struct {
    int32_t *ptr;  /* in + 1 */
    int32_t *ex;   /* TILE * in: the example (lane) of each entry, by input */
    float *dev;    /* TILE * in: its deviation */
} by_input;

static void sort_by_input(int64_t in, int64_t b0, int64_t b1, const int64_t *idx, const int64_t *offsets,
                          const int32_t *columns, const float *values, by_input s) {
    for (int64_t k = 0; k <= in; k++) s.ptr[k] = 0;
    for (int64_t b = b0; b < b1; b++)
        for (int64_t e = offsets[idx[b]]; e < offsets[idx[b] + 1]; e++) s.ptr[columns[e] + 1]++;
    for (int64_t k = 0; k < in; k++) s.ptr[k + 1] += s.ptr[k];
    for (int64_t b = b0; b < b1; b++)  /* ptr[k] runs up to its end, then is moved back */
        for (int64_t e = offsets[idx[b]]; e < offsets[idx[b] + 1]; e++) {
            const int32_t p = s.ptr[columns[e]]++;
            s.ex[p] = (int32_t)(b - b0);
            s.dev[p] = values[e];
        }
    for (int64_t k = in; k > 0; k--) s.ptr[k] = s.ptr[k - 1];
    s.ptr[0] = 0;
}

/* yt[j * TILE + i] = Y[i * ws + j] + base[j], ReLU'd where relu != 0, for i, j < 8: an 8 x 8 block
 * of the example-major outputs transposed to tile-major (unpack, then 2 x 2 and 4 x 4 blocks). */
static inline void finish8x8(const float *Y, int64_t ws, const float *base, float *yt, int32_t relu) {
    vf8 r[8], t[8], u[8];
    for (int i = 0; i < 8; i++) r[i] = *(const vf8u *)(Y + i * ws);
    for (int i = 0; i < 8; i += 2) {
        t[i] = __builtin_shufflevector(r[i], r[i + 1], 0, 8, 1, 9, 4, 12, 5, 13);
        t[i + 1] = __builtin_shufflevector(r[i], r[i + 1], 2, 10, 3, 11, 6, 14, 7, 15);
    }
    for (int i = 0; i < 8; i += 4)
        for (int h = 0; h < 2; h++) {
            u[i + 2 * h] = __builtin_shufflevector(t[i + h], t[i + h + 2], 0, 1, 8, 9, 4, 5, 12, 13);
            u[i + 2 * h + 1] = __builtin_shufflevector(t[i + h], t[i + h + 2], 2, 3, 10, 11, 6, 7, 14, 15);
        }
    for (int j = 0; j < 4; j++) { /* u[j]: columns j (low half) and j + 4 (high half) of rows 0-3 */
        vf8 lo = __builtin_shufflevector(u[j], u[j + 4], 0, 1, 2, 3, 8, 9, 10, 11);
        vf8 hi = __builtin_shufflevector(u[j], u[j + 4], 4, 5, 6, 7, 12, 13, 14, 15);
        lo += base[j], hi += base[j + 4];
        if (relu) lo = (vf8)((vi8)lo & ~(lo < 0.0f)), hi = (vf8)((vi8)hi & ~(hi < 0.0f));
        *(vf8u *)(yt + j * TILE) = lo;
        *(vf8u *)(yt + (j + 4) * TILE) = hi;
    }
}

/* YT (out rows, tile-major) = W x + bias for examples idx[0..B), ReLU where relu_out != 0. WT's
 * rows are ws floats (out rounded up to CHUNK; the weights past out are zero). For each chunk of
 * CHUNK outputs and block of PBLOCK inputs (16 KiB of WT, in L1), every example adds its entries
 * of that block (a sub-range of its own, sorted by input) into registers, one chain per output.
 * iscratch: TILE * (in / PBLOCK + 2) int64s; fscratch: TILE * ws + ws floats. */
#define PBLOCK 64
#define AHEAD 4 /* examples whose entries are prefetched ahead of the one being read */
void lt_nonblank_forward(int64_t out, int64_t ws, int64_t in, int64_t B, const int64_t *idx,
                         const int64_t *offsets, const int32_t *columns, const float *values, float background,
                         const float *WT, const float *bias, float *YT, int32_t relu_out, int32_t *iscratch,
                         float *fscratch) {
    const int64_t nblk = (in + PBLOCK - 1) / PBLOCK;
    float *Y = fscratch;         /* the tile's outputs, example-major: Y[lane * ws + o] */
    float *base = Y + TILE * ws; /* bias + background * (W 1) */
    for (int64_t c0 = 0; c0 < ws; c0 += CHUNK) {
        vf s0 = {0}, s1 = {0}, s2 = {0}, s3 = {0};
        for (int64_t k = 0; k < in; k++) {
            const float *w = WT + k * ws + c0;
            s0 += ld(w), s1 += ld(w + 16), s2 += ld(w + 32), s3 += ld(w + 48);
        }
        st(base + c0, s0), st(base + c0 + 16, s1), st(base + c0 + 32, s2), st(base + c0 + 48, s3);
    }
    for (int64_t o = 0; o < out; o++) base[o] = bias[o] + background * base[o];
    for (int64_t b0 = 0; b0 < B; b0 += TILE) {
        const int64_t n = b0 + TILE < B ? TILE : B - b0;
        int64_t *starts = (int64_t *)iscratch; /* starts[l * (nblk + 1) + blk]: example l's first entry in blk */
        for (int64_t l = 0; l < AHEAD && l < n; l++) {
            const int64_t f = offsets[idx[b0 + l]], g = offsets[idx[b0 + l] + 1];
            for (int64_t k = f; k < g; k += 16) __builtin_prefetch(columns + k), __builtin_prefetch(values + k);
        }
        for (int64_t l = 0; l < n; l++) {
            int64_t e = offsets[idx[b0 + l]];
            const int64_t end = offsets[idx[b0 + l] + 1];
            if (l + AHEAD < n) { /* a training batch's examples lie anywhere in memory: fetch ahead */
                const int64_t f = offsets[idx[b0 + l + AHEAD]], g = offsets[idx[b0 + l + AHEAD] + 1];
                for (int64_t k = f; k < g; k += 16) __builtin_prefetch(columns + k), __builtin_prefetch(values + k);
                __builtin_prefetch(columns + g - 1), __builtin_prefetch(values + g - 1);
            }
            for (int64_t blk = 0; blk < nblk; blk++) {
                starts[l * (nblk + 1) + blk] = e;
                while (e < end && columns[e] < (blk + 1) * PBLOCK) e++;
            }
            starts[l * (nblk + 1) + nblk] = end;
        }
        for (int64_t i = 0; i < n * ws; i++) Y[i] = 0.0f;
        for (int64_t c0 = 0; c0 < ws; c0 += CHUNK) /* CHUNK == TILE: LANES registers */
            for (int64_t blk = 0; blk < nblk; blk++)
                for (int64_t l = 0; l < n; l++) {
                    const int64_t *st_ = starts + l * (nblk + 1) + blk;
                    int64_t e = st_[0];
                    const int64_t end = st_[1];
                    if (e == end) continue;
                    float *y = Y + l * ws + c0;
                    vn a[LANES];
                    for (int q = 0; q < LANES; q++) a[q] = ldn(y + q * VW);
                    for (; e < end; e++) {
                        const float *w = WT + (int64_t)columns[e] * ws + c0;
                        const vn d = splatn(values[e]);
                        for (int q = 0; q < LANES; q++) a[q] += d * ldn(w + q * VW);
                    }
                    for (int q = 0; q < LANES; q++) stn(y + q * VW, a[q]);
                }
        float *yt = ROW(YT, b0 / TILE, out, 0);
        const int64_t o8 = out / 8 * 8, l8 = n / 8 * 8;
        for (int64_t o = 0; o < o8; o += 8)
            for (int64_t l = 0; l < l8; l += 8) finish8x8(Y + l * ws + o, ws, base + o, yt + o * TILE + l, relu_out);
        for (int64_t o = 0; o < out; o++)
            for (int64_t l = o < o8 ? l8 : 0; l < n; l++) {
                const float v = Y[l * ws + o] + base[o];
                yt[o * TILE + l] = relu_out && v < 0.0f ? 0.0f : v;
            }
    }
}

/* Its gradients: GWT (as WT) = background * (G 1) 1^T + the sum over examples of d g^T (g: the
 * example's gradient w.r.t. the output, from tile-major GT), times maskT (NULL: none), and the
 * bias's. iscratch: in + 1 + TILE * in ints; fscratch: TILE * in + TILE * ws + ws floats. */
void lt_nonblank_weight_grad(int64_t out, int64_t ws, int64_t in, int64_t B, const int64_t *idx,
                             const int64_t *offsets, const int32_t *columns, const float *values,
                             float background, const float *GT, const float *maskT, float *GWT,
                             float *bias_grad, int32_t *iscratch, float *fscratch) {
    by_input s = {iscratch, iscratch + in + 1, fscratch};
    float *G = fscratch + TILE * in; /* the tile's output gradients, example-major, as Y above */
    float *init = G + TILE * ws;     /* background * (G 1), zero past out */
    const int64_t ntiles = (B + TILE - 1) / TILE;
    for (int64_t o = 0; o < ws; o++) init[o] = 0.0f;
    for (int64_t o = 0; o < out; o++) {
        vf sum = {0};
        for (int64_t t = 0; t < ntiles; t++) {
            const float *g = ROW(GT, t, out, o);
            sum += (ld(g) + ld(g + 16)) + (ld(g + 32) + ld(g + 48));
        }
        bias_grad[o] = hsum(sum);
        init[o] = background * bias_grad[o];
    }
    for (int64_t t = 0; t < ntiles; t++) {
        const int64_t b0 = t * TILE, b1 = b0 + TILE < B ? b0 + TILE : B, n = b1 - b0;
        sort_by_input(in, b0, b1, idx, offsets, columns, values, s);
        const float *gt = ROW(GT, t, out, 0);
        for (int64_t l = 0; l < n; l++) {
            for (int64_t o = 0; o < out; o++) G[l * ws + o] = gt[o * TILE + l];
            for (int64_t o = out; o < ws; o++) G[l * ws + o] = 0.0f;
        }
        const int last = t == ntiles - 1;
        for (int64_t c0 = 0; c0 < ws; c0 += PASS)
            for (int64_t k = 0; k < in; k++) {
                float *gw = GWT + k * ws + c0;
                const float *from = t == 0 ? init + c0 : gw;
                vn a[NV];
                for (int q = 0; q < NV; q++) a[q] = ldn(from + q * VW);
                for (int32_t p = s.ptr[k]; p < s.ptr[k + 1]; p++) { /* accumulated in registers */
                    const float *g = G + (int64_t)s.ex[p] * ws + c0;
                    const vn d = splatn(s.dev[p]);
                    for (int q = 0; q < NV; q++) a[q] += d * ldn(g + q * VW);
                }
                if (last && maskT) {
                    const float *m = maskT + k * ws + c0;
                    for (int q = 0; q < NV; q++) a[q] *= ldn(m + q * VW);
                }
                for (int q = 0; q < NV; q++) stn(gw + q * VW, a[q]);
            }
    }
}

/* Adam (no weight decay, no amsgrad) on n compact parameters, step counting from 1: the arithmetic
 * of torch._fused_adam_ (a lerp for the first moment; 1 - beta and the bias corrections in double,
 * then float: 1 - (float)0.999 would be 1.00005e-3, not 1e-3). */
void lt_adam(int64_t n, float *p, const float *g, float *m, float *v, double lr, double beta1,
             double beta2, double eps, int64_t step) {
    const float step_size = (float)(lr / (1.0 - lt_pow(beta1, step)));
    const float bc2_sqrt = (float)__builtin_sqrt(1.0 - lt_pow(beta2, step));
    const float b2 = (float)beta2, e = (float)eps;
    const float one_b1 = (float)(1.0 - beta1), one_b2 = (float)(1.0 - beta2);
    for (int64_t i = 0; i < n; i++) {
        const float gi = g[i];
        const float mi = m[i] + one_b1 * (gi - m[i]);
        const float vi = v[i] * b2 + gi * gi * one_b2;
        m[i] = mi;
        v[i] = vi;
        p[i] = p[i] - step_size * mi / (__builtin_sqrtf(vi) / bc2_sqrt + e);
    }
}

/* Subnormal floats flushed to zero (FTZ) and read as zero (DAZ) on the calling thread where on != 0,
 * IEEE arithmetic again where 0 (the trainer's mode: lottery.native); returns whether both were on.
 * The MXCSR register of x86; elsewhere nothing is changed and 0 returned. */
int32_t lt_set_flush(int32_t on) {
#if defined(__x86_64__) || defined(__i386__)
    const unsigned csr = __builtin_ia32_stmxcsr(), bits = 0x8040;
    __builtin_ia32_ldmxcsr(on ? csr | bits : csr & ~bits);
    return (csr & bits) == bits;
#else
    (void)on;
    return 0;
#endif
}
