/* Link prediction from plain C: scores the node pairs of a graph with a pair
 * model (an encoder + inner-product or MLP pair decoder) through libtinygnn.a.
 * Builds for the emulated Cortex-M4 (startup.c, semihosting) and for the host
 * (host_io.c, stdio) from the same source: see build-link.sh.
 *
 * Loads the model emitted by `tinygnn convert --emit c` as link_model.{c,h},
 * runs it on the graph and pairs of graph_data.h (graph2c.py, PyG's
 * edge_label_index), and prints:
 *   model <bytes> bytes, pairs <P>/<capacity>, arena <need>/<size> bytes
 *                                   (sparse features: "arena <size> bytes", the dense need not applying)
 *   run <n> instructions            (M4 only; meaningful under QEMU -icount shift=10)
 *   output <rows> x <channels>
 *   bytes <hex of one row>          (one line per pair: the int8 scores)
 *   <status name> a=<a> b=<b>       (one line per rejected pair input:
 *                                    missing, one list NULL, index out of range, too many)
 *   done
 * and exits with 0, or 1 after printing "error ..." on any failure.
 * scripts/areas/capi.sh compares the bytes lines with `tinygnn run --output-bytes`. */
#include <stddef.h>
#include <stdint.h>
#include <math.h>

#include "tinygnn.h"
#include "link_model.h" /* emitted by `tinygnn convert --emit c` (with link_model.c) */
#include "graph_data.h"
#include "example_io.h" /* put_str, put_uint, fail, TIMER0 */

#ifndef GRAPH_HAS_PAIRS
#error "graph_data.h has no node pairs (the GRAPHS file needs edge_label_index)"
#endif

#if defined(__arm__) && !defined(__linux__)
#define ON_M4 1 /* TIMER0 (example_io.h) exists only on the emulated board */
#endif

static tgnn_model model;
static tgnn_session session;
/* The arena: the model's need at its capacity (dense features), or, for sparse
   features, LINK_ARENA_BYTES from build-link.sh (`tinygnn inspect`: the need at
   capacity when the first layer reads the sparse features in place). */
#ifndef LINK_ARENA_BYTES
#define LINK_ARENA_BYTES LINK_MODEL_ARENA_BYTES
#endif
static uint8_t arena[LINK_ARENA_BYTES] __attribute__((aligned(8)));
#ifdef GRAPH_SPARSE
/* The sparse values quantized with the model's input quantization. */
static int8_t q_values[GRAPH_NNZ];
#endif
/* One pair more than the file has: the too-many-pairs check (the model's pair
   capacity is the pair count of its calibration file, this same file). */
static uint16_t extra[GRAPH_NUM_PAIRS + 1];

static char line[512];

/* Runs `g`, which must fail with `want`; prints the code and its details. */
static void expect_rejected(const tgnn_graph *g, tgnn_status want) {
    tgnn_status s = tgnn_session_run(&session, g);
    tgnn_error_info info;
    if (tgnn_session_last_error(&session, &info) != TGNN_OK || info.code != s) fail("tgnn_session_last_error", s);
    char *p = put_str(line, tgnn_status_name(s));
    p = put_str(p, " a=");
    p = put_uint(p, info.a);
    p = put_str(p, " b=");
    p = put_uint(p, info.b);
    put_str(p, "\n")[0] = 0;
    sh_puts(line);
    if (s != want) fail("bad pairs accepted or misreported", s);
    tgnn_output out;
    if (tgnn_session_output(&session, 0, &out) != TGNN_ERR_NO_OUTPUT) fail("output after a failed run", s);
}

int main(void) {
    tgnn_status s = tgnn_model_init(&model, link_model_model, LINK_MODEL_MODEL_LEN);
    if (s != TGNN_OK) fail("tgnn_model_init", s);
    bool scores_pairs = false;
    uint32_t max_pairs = 0;
    s = tgnn_model_pairs(&model, &scores_pairs, &max_pairs);
    if (s != TGNN_OK) fail("tgnn_model_pairs", s);
    if (!scores_pairs) fail("not a pair model", TGNN_ERR_INVALID_ARGUMENT);
    size_t need = 0;
    s = tgnn_model_arena_bytes_with_pairs(&model, GRAPH_NUM_NODES, GRAPH_NUM_EDGES, 1, GRAPH_NUM_PAIRS, &need);
    if (s != TGNN_OK) fail("tgnn_model_arena_bytes_with_pairs", s);
    char *p = put_str(line, "model ");
    p = put_uint(p, LINK_MODEL_MODEL_LEN);
    p = put_str(p, " bytes, pairs ");
    p = put_uint(p, GRAPH_NUM_PAIRS);
    p = put_str(p, "/");
    p = put_uint(p, max_pairs);
    p = put_str(p, ", arena ");
#ifndef GRAPH_SPARSE
    p = put_uint(p, need);
    p = put_str(p, "/");
#endif
    p = put_uint(p, sizeof arena);
    put_str(p, " bytes\n")[0] = 0;
    sh_puts(line);

#ifdef GRAPH_SPARSE
    /* Quantize the stored values as the runtime quantizes floats:
       clamp(roundf(x / scale) + zero_point). */
    float scale = 0.0f;
    int8_t zp = 0;
    s = tgnn_model_input_quantization(&model, &scale, &zp);
    if (s != TGNN_OK) fail("tgnn_model_input_quantization", s);
    for (size_t k = 0; k < GRAPH_NNZ; k++) {
        float t = roundf(graph_values[k] / scale);
        int32_t q = (t > 1000.0f ? 1000 : t < -1000.0f ? -1000 : (int32_t)t) + zp;
        q_values[k] = (int8_t)(q > 127 ? 127 : q < -128 ? -128 : q);
    }
    s = tgnn_session_init(&session, &model, arena, sizeof arena);
#else
    /* The exact need for this many pairs is enough: the session gets no more. */
    s = tgnn_session_init(&session, &model, arena, need);
#endif
    if (s != TGNN_OK) fail("tgnn_session_init", s);
    tgnn_graph g = {
        .num_nodes = GRAPH_NUM_NODES,
#ifdef GRAPH_SPARSE
        .features_kind = TGNN_FEATURES_SPARSE_I8,
        .sparse_row_ptr = graph_row_ptr,
        .sparse_cols = graph_cols,
        .features_i8 = q_values,
        .features_len = GRAPH_NNZ,
#else
        .features_kind = TGNN_FEATURES_F32,
        .features_f32 = graph_x,
        .features_len = GRAPH_NUM_NODES * GRAPH_NUM_FEATURES,
#endif
        .sources = graph_sources,
        .targets = graph_targets,
        .num_edges = GRAPH_NUM_EDGES,
#ifdef GRAPH_HAS_EDGE_WEIGHT
        .edge_weight = graph_edge_weight,
#endif
        .pair_sources = graph_pair_sources,
        .pair_targets = graph_pair_targets,
        .num_pairs = GRAPH_NUM_PAIRS,
    };
#ifdef ON_M4
    uint32_t t0 = timer0_start();
#endif
    s = tgnn_session_run(&session, &g);
#ifdef ON_M4
    uint32_t t1 = TIMER0_VALUE;
#endif
    if (s != TGNN_OK) fail("tgnn_session_run", s);
#ifdef ON_M4
    p = put_str(line, "run ");
    p = put_uint(p, timer0_instructions(t0, t1));
    put_str(p, " instructions\n")[0] = 0;
    sh_puts(line);
#endif

    tgnn_output out;
    s = tgnn_session_output(&session, 0, &out);
    if (s != TGNN_OK) fail("tgnn_session_output", s);
    p = put_str(line, "output ");
    p = put_uint(p, out.rows);
    p = put_str(p, " x ");
    p = put_uint(p, out.channels);
    put_str(p, "\n")[0] = 0;
    sh_puts(line);
    if (out.rows != GRAPH_NUM_PAIRS) fail("not one output row per pair", TGNN_ERR_INVALID_ARGUMENT);
    static const char hex[] = "0123456789abcdef";
    for (size_t r = 0; r < out.rows; r++) {
        p = put_str(line, "bytes ");
        for (size_t c = 0; c < out.channels && c < 200; c++) {
            uint8_t b = (uint8_t)out.data[r * out.channels + c];
            *p++ = hex[b >> 4];
            *p++ = hex[b & 15];
        }
        put_str(p, "\n")[0] = 0;
        sh_puts(line);
    }

    /* Bad pair inputs: each rejected with its code and culprit, nothing run. */
    tgnn_graph bad = g;
    bad.pair_sources = NULL;
    bad.pair_targets = NULL;
    bad.num_pairs = 0;
    expect_rejected(&bad, TGNN_ERR_MISSING_PAIRS);
    bad = g;
    bad.pair_targets = NULL;
    expect_rejected(&bad, TGNN_ERR_PAIR_LIST_MISMATCH);
    static uint16_t far[1] = {GRAPH_NUM_NODES};
    bad = g;
    bad.pair_targets = far;
    bad.num_pairs = 1;
    expect_rejected(&bad, TGNN_ERR_PAIR_INDEX_OUT_OF_RANGE);
    if (max_pairs < GRAPH_NUM_PAIRS + 1) {
        bad = g;
        bad.pair_sources = extra;
        bad.pair_targets = extra;
        bad.num_pairs = (size_t)max_pairs + 1;
        expect_rejected(&bad, TGNN_ERR_TOO_MANY_PAIRS);
    }

    sh_puts("done\n");
    return 0;
}
