/* tinygnn from plain C on an emulated Cortex-M4 (QEMU mps2-an386).
 *
 * Loads the karate-gcn model emitted by `tinygnn convert --emit c`, runs it through libtinygnn.a on the graph of graph_data.h (written
 * by graph2c.py), and prints over semihosting:
 *   model <bytes> bytes, arena <need>/<size> bytes
 *   run <n> instructions            (meaningful under QEMU -icount shift=10 only)
 *   output <rows> x <channels>
 *   bytes <hex of one row>          (one line per row: the int8 output)
 *   argmax <class of each row>
 *   bad-edge <status name> a=<edge> b=<node>   (an invalid graph is rejected)
 *   done
 * and exits QEMU with 0, or 1 after printing "error ..." on any failure.
 * scripts/areas/capi.sh compares the bytes lines with `tinygnn run --output-bytes`. */
#include <stddef.h>
#include <stdint.h>

#include "tinygnn.h"
#include "karate-gcn.h"  /* emitted by `tinygnn convert --emit c` (with karate-gcn.c) */
#include "graph_data.h"
#include "example_io.h" /* put_str, put_uint, fail, TIMER0 */

static tgnn_model model;
static tgnn_session session;
static uint8_t arena[KARATE_GCN_ARENA_BYTES] __attribute__((aligned(8)));

static char line[512];

int main(void) {
    tgnn_status s = tgnn_model_init(&model, karate_gcn_model, KARATE_GCN_MODEL_LEN);
    if (s != TGNN_OK) fail("tgnn_model_init", s);
    size_t need = 0;
    s = tgnn_model_arena_bytes(&model, GRAPH_NUM_NODES, GRAPH_NUM_EDGES, 1, &need);
    if (s != TGNN_OK) fail("tgnn_model_arena_bytes", s);
    char *p = put_str(line, "model ");
    p = put_uint(p, KARATE_GCN_MODEL_LEN);
    p = put_str(p, " bytes, arena ");
    p = put_uint(p, need);
    p = put_str(p, "/");
    p = put_uint(p, sizeof arena);
    put_str(p, " bytes\n")[0] = 0;
    sh_puts(line);

    s = tgnn_session_init(&session, &model, arena, sizeof arena);
    if (s != TGNN_OK) fail("tgnn_session_init", s);
    tgnn_graph g = {
        .num_nodes = GRAPH_NUM_NODES,
        .features_kind = TGNN_FEATURES_F32,
        .features_f32 = graph_x,
        .features_len = GRAPH_NUM_NODES * GRAPH_NUM_FEATURES,
        .sources = graph_sources,
        .targets = graph_targets,
        .num_edges = GRAPH_NUM_EDGES,
#ifdef GRAPH_HAS_EDGE_WEIGHT
        .edge_weight = graph_edge_weight,
#endif
#ifdef GRAPH_HAS_BATCH
        .batch = graph_batch,
#endif
    };
    uint32_t t0 = timer0_start();
    s = tgnn_session_run(&session, &g);
    uint32_t t1 = TIMER0_VALUE;
    if (s != TGNN_OK) fail("tgnn_session_run", s);
    p = put_str(line, "run ");
    p = put_uint(p, timer0_instructions(t0, t1));
    put_str(p, " instructions\n")[0] = 0;
    sh_puts(line);

    tgnn_output out;
    s = tgnn_session_output(&session, 0, &out);
    if (s != TGNN_OK) fail("tgnn_session_output", s);
    p = put_str(line, "output ");
    p = put_uint(p, out.rows);
    p = put_str(p, " x ");
    p = put_uint(p, out.channels);
    put_str(p, "\n")[0] = 0;
    sh_puts(line);
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
    p = put_str(line, "argmax");
    for (size_t r = 0; r < out.rows && r < 100; r++) {
        size_t cls = 0;
        s = tgnn_session_argmax(&session, 0, r, &cls);
        if (s != TGNN_OK) fail("tgnn_session_argmax", s);
        p = put_str(p, " ");
        p = put_uint(p, cls);
    }
    put_str(p, "\n")[0] = 0;
    sh_puts(line);

    /* An invalid graph is rejected with a code and the culprit, nothing run. */
    static const uint16_t bad_targets[1] = {GRAPH_NUM_NODES};
    tgnn_graph bad = g;
    bad.targets = bad_targets;
    bad.sources = graph_sources;
    bad.num_edges = 1;
#ifdef GRAPH_HAS_EDGE_WEIGHT
    bad.edge_weight = graph_edge_weight;
#endif
    s = tgnn_session_run(&session, &bad);
    tgnn_error_info info;
    if (tgnn_session_last_error(&session, &info) != TGNN_OK || info.code != s) fail("tgnn_session_last_error", s);
    p = put_str(line, "bad-edge ");
    p = put_str(p, tgnn_status_name(s));
    p = put_str(p, " a=");
    p = put_uint(p, info.a);
    p = put_str(p, " b=");
    p = put_uint(p, info.b);
    put_str(p, "\n")[0] = 0;
    sh_puts(line);
    if (s != TGNN_ERR_NODE_INDEX_OUT_OF_RANGE) fail("bad graph accepted", s);
    if (tgnn_session_output(&session, 0, &out) != TGNN_ERR_NO_OUTPUT) fail("output after a failed run", s);

    sh_puts("done\n");
    return 0;
}
