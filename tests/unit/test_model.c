/* Model specs, initialisation, backprop against finite differences, and
 * training on real data. argv[1]: the Fashion-MNIST directory (default
 * /usr/share/datasets/fashion-mnist). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "data.h"
#include "err.h"
#include "model.h"
#include "rng.h"

static const char *datadir = "/usr/share/datasets/fashion-mnist";

static void expect_spec_error(const char *spec, const char *what)
{
    char err[256] = "";
    sfl_model m;
    int rc = sfl_model_create(&m, spec, err, sizeof err);
    if (rc != SFL_EINVAL || !strstr(err, what))
        print_error("spec '%s': rc %d, message '%s' (want '%s')\n", spec, rc, err, what);
    assert_int_equal(rc, SFL_EINVAL);
    assert_non_null(strstr(err, what));
    assert_null(m.params);
}

static void test_spec_errors(void **state)
{
    (void)state;
    expect_spec_error("", "unknown kind");
    expect_spec_error("cnn:1-2-3", "unknown kind 'cnn'");
    expect_spec_error("logreg ", "unknown kind");
    expect_spec_error("MLP:784-256-10", "unknown kind");
    expect_spec_error("mlp:", "bad number ''");
    expect_spec_error("mlp:784--10", "bad number ''");
    expect_spec_error("mlp:784-256-", "bad number ''");
    expect_spec_error("mlp:78a-256-10", "bad number '78a'");
    expect_spec_error("mlp:784-256-10x", "bad number '10x'");
    expect_spec_error("mlp:-784-256-10", "bad number");
    expect_spec_error("mlp:+784-256-10", "bad number");
    expect_spec_error("mlp:784- 256-10", "bad number");
    expect_spec_error("mlp:784-0-10", "out of range");
    expect_spec_error("mlp:784-1048577-10", "out of range");
    expect_spec_error("mlp:784-99999999999999999999999-10", "out of range");
    expect_spec_error("mlp:1-1-1-1-1-1-1-1-1-1", "too many layers");
    expect_spec_error("mlp:784-10", "hidden layer");
    expect_spec_error("logreg:784", "exactly two");
    expect_spec_error("logreg:784-256-10", "exactly two");
    expect_spec_error("mlp:1048576-1048576-10", "too large");
    expect_spec_error("mlp:65536-4096-10", "too large");   /* 2^28 weights + biases */

    char longspec[200] = "mlp:784";
    while (strlen(longspec) < 150)
        strcat(longspec, "-1");
    expect_spec_error(longspec, "too long");
}

static void test_nparams(void **state)
{
    (void)state;
    char err[256];
    sfl_model m;

    assert_int_equal(sfl_model_create(&m, "logreg", err, sizeof err), 0);
    assert_int_equal(m.nparams, 7850);
    assert_int_equal(m.nlayers, 1);
    assert_int_equal(m.sizes[0], 784);
    assert_int_equal(m.sizes[1], 10);
    assert_int_equal(m.b_off[0], 7840);
    assert_string_equal(m.spec, "logreg");
    for (size_t i = 0; i < m.nparams; i++)
        assert_true(m.params[i] == 0.0f);
    sfl_model_free(&m);

    assert_int_equal(sfl_model_create(&m, "mlp:784-256-10", err, sizeof err), 0);
    assert_int_equal(m.nparams, 203530);
    assert_int_equal(m.nlayers, 2);
    assert_int_equal(m.w_off[0], 0);
    assert_int_equal(m.b_off[0], 200704);
    assert_int_equal(m.w_off[1], 200960);
    assert_int_equal(m.b_off[1], 203520);
    sfl_model_free(&m);
    assert_null(m.params);

    assert_int_equal(sfl_model_create(&m, "logreg:20-3", err, sizeof err), 0);
    assert_int_equal(m.nparams, 63);
    sfl_model_free(&m);
    /* the most layers allowed */
    assert_int_equal(sfl_model_create(&m, "mlp:1-1-1-1-1-1-1-1-1", err, sizeof err), 0);
    assert_int_equal(m.nlayers, SFL_MODEL_MAX_LAYERS);
    assert_int_equal(m.nparams, 16);
    sfl_model_free(&m);
}

static void test_init_reproducible(void **state)
{
    (void)state;
    char err[256];
    sfl_model a, b, c;
    assert_int_equal(sfl_model_create(&a, "mlp:784-256-10", err, sizeof err), 0);
    assert_int_equal(sfl_model_create(&b, "mlp:784-256-10", err, sizeof err), 0);
    assert_int_equal(sfl_model_create(&c, "mlp:784-256-10", err, sizeof err), 0);
    sfl_model_init(&a, 1234);
    sfl_model_init(&b, 1234);
    sfl_model_init(&c, 1235);
    assert_memory_equal(a.params, b.params, a.nparams * sizeof(float));
    assert_memory_not_equal(a.params, c.params, a.nparams * sizeof(float));

    /* He-uniform for the ReLU layer, Glorot-uniform for the output layer */
    double he = sqrt(6.0 / 784), gl = sqrt(6.0 / (256 + 10)), sq = 0;
    for (size_t i = 0; i < 200704; i++) {
        assert_true(fabs(a.params[i]) <= he);
        sq += (double)a.params[i] * a.params[i];
    }
    assert_true(fabs(sq / 200704 / (2.0 / 784) - 1.0) < 0.02);
    for (size_t i = a.w_off[1]; i < a.b_off[1]; i++)
        assert_true(fabs(a.params[i]) <= gl);
    for (size_t i = 0; i < 256; i++)
        assert_true(a.params[a.b_off[0] + i] == 0.0f);
    for (size_t i = 0; i < 10; i++)
        assert_true(a.params[a.b_off[1] + i] == 0.0f);
    sfl_model_free(&a);
    sfl_model_free(&b);
    sfl_model_free(&c);
}

/* Loss of the model at p (double precision throughout), written from the
 * definition, independently of model.c. */
static double ref_loss(const sfl_model *m, const double *p, const float *x, const uint8_t *y,
                       size_t n)
{
    double act[2][64], total = 0;
    for (size_t i = 0; i < n; i++) {
        for (int j = 0; j < m->sizes[0]; j++)
            act[0][j] = x[i * (size_t)m->sizes[0] + j];
        int cur = 0;
        for (int l = 0; l < m->nlayers; l++) {
            int in = m->sizes[l], out = m->sizes[l + 1];
            for (int o = 0; o < out; o++) {
                double z = p[m->b_off[l] + o];
                for (int k = 0; k < in; k++)
                    z += p[m->w_off[l] + (size_t)o * in + k] * act[cur][k];
                act[!cur][o] = l < m->nlayers - 1 && z < 0 ? 0 : z;
            }
            cur = !cur;
        }
        int c = m->sizes[m->nlayers];
        double mx = act[cur][0], s = 0;
        for (int o = 1; o < c; o++)
            mx = act[cur][o] > mx ? act[cur][o] : mx;
        for (int o = 0; o < c; o++)
            s += exp(act[cur][o] - mx);
        total += mx + log(s) - act[cur][y[i]];
    }
    return total / (double)n;
}

static void random_batch(sfl_rng *r, float *x, uint8_t *y, size_t n, int dim, int classes)
{
    for (size_t i = 0; i < n * (size_t)dim; i++)
        x[i] = (float)sfl_rng_normal(r);
    for (size_t i = 0; i < n; i++)
        y[i] = (uint8_t)sfl_rng_below(r, (uint32_t)classes);
}

/* Backprop against central differences. Two checks: every coordinate
 * against differences of the double-precision reference (eps 1e-6, so the
 * truncation error is ~1e-12 and the float gradient's own rounding
 * dominates), and all coordinates together against differences of
 * sfl_model_loss itself (float forward: eps 1e-2 keeps rounding noise, about
 * 1e-7 / eps, well below the tolerance). */
static void test_gradient_finite_differences(void **state)
{
    (void)state;
    enum { N = 7 };
    char err[256];
    sfl_model m;
    sfl_rng r;
    float x[N * 20];
    uint8_t y[N];

    assert_int_equal(sfl_model_create(&m, "mlp:20-16-8-5", err, sizeof err), 0);
    assert_int_equal(m.nparams, 20 * 16 + 16 + 16 * 8 + 8 + 8 * 5 + 5);
    sfl_model_init(&m, 99);
    sfl_rng_init(&r, "test", 99, 0, 0);
    for (int l = 0; l < m.nlayers; l++)   /* nonzero biases exercise their gradients */
        for (int o = 0; o < m.sizes[l + 1]; o++)
            m.params[m.b_off[l] + o] = 0.2f * (float)sfl_rng_normal(&r);
    random_batch(&r, x, y, N, 20, 5);

    sfl_workspace *ws = sfl_workspace_new(&m, N);
    assert_non_null(ws);
    float *g = malloc(m.nparams * sizeof *g);
    double *p = malloc(m.nparams * sizeof *p);
    float *pf = malloc(m.nparams * sizeof *pf);
    assert_non_null(g);
    assert_non_null(p);
    assert_non_null(pf);
    for (size_t k = 0; k < m.nparams; k++)
        p[k] = m.params[k];

    size_t correct = 99;
    double loss = sfl_model_loss(&m, ws, m.params, x, y, N, g, &correct);
    assert_true(correct <= N);
    double want = ref_loss(&m, p, x, y, N);
    assert_true(fabs(loss - want) <= 1e-5 * fabs(want));
    /* the loss alone (no gradient) is the same number */
    assert_true(sfl_model_loss(&m, ws, m.params, x, y, N, NULL, NULL) == loss);

    const double eps = 1e-6;
    int active = 0;
    for (size_t k = 0; k < m.nparams; k++) {
        double keep = p[k];
        p[k] = keep + eps;
        double up = ref_loss(&m, p, x, y, N);
        p[k] = keep - eps;
        double down = ref_loss(&m, p, x, y, N);
        p[k] = keep;
        double num = (up - down) / (2 * eps);
        double tol = 1e-2 * fmax(fabs(num), fabs(g[k])) + 1e-6;
        if (fabs(num - g[k]) > tol)
            print_error("param %zu: backprop %g, finite difference %g\n", k, g[k], num);
        assert_true(fabs(num - g[k]) <= tol);
        active += fabs(num) > 1e-4;
    }
    assert_true(active > (int)m.nparams / 2);   /* not trivially all zero */

    const float feps = 1e-2f;
    double diff = 0, norm = 0;
    memcpy(pf, m.params, m.nparams * sizeof *pf);
    for (size_t k = 0; k < m.nparams; k++) {
        float keep = pf[k];
        pf[k] = keep + feps;
        double up = sfl_model_loss(&m, ws, pf, x, y, N, NULL, NULL);
        pf[k] = keep - feps;
        double down = sfl_model_loss(&m, ws, pf, x, y, N, NULL, NULL);
        pf[k] = keep;
        double num = (up - down) / (2.0 * feps);
        diff += (num - g[k]) * (num - g[k]);
        norm += (num + g[k]) * (num + g[k]);
    }
    assert_true(sqrt(diff / norm) < 1e-2);

    free(g);
    free(p);
    free(pf);
    sfl_workspace_free(ws);
    sfl_model_free(&m);
}

/* A logreg gradient is known in closed form: (softmax - onehot) x^T / n. */
static void test_logreg_gradient_closed_form(void **state)
{
    (void)state;
    enum { N = 3, D = 4, C = 3 };
    char err[256];
    sfl_model m;
    const float x[N * D] = { 1, 0, 2, -1, 0.5f, 0.5f, 0, 3, -2, 1, 1, 0 };
    const uint8_t y[N] = { 2, 0, 1 };
    float g[D * C + C];

    assert_int_equal(sfl_model_create(&m, "logreg:4-3", err, sizeof err), 0);
    sfl_workspace *ws = sfl_workspace_new(&m, N);
    assert_non_null(ws);
    /* zero weights: softmax is uniform, loss is log 3 */
    size_t correct;
    double loss = sfl_model_loss(&m, ws, m.params, x, y, N, g, &correct);
    assert_true(fabs(loss - log(3.0)) < 1e-6);
    for (int c = 0; c < C; c++) {
        double gb = 0;
        for (int i = 0; i < N; i++)
            gb += (1.0 / 3 - (y[i] == c)) / N;
        assert_true(fabs(g[D * C + c] - gb) < 1e-6);
        for (int k = 0; k < D; k++) {
            double gw = 0;
            for (int i = 0; i < N; i++)
                gw += (1.0 / 3 - (y[i] == c)) * x[i * D + k] / N;
            assert_true(fabs(g[c * D + k] - gw) < 1e-6);
        }
    }
    sfl_workspace_free(ws);
    sfl_model_free(&m);
}

static void test_loss_misuse(void **state)
{
    (void)state;
    char err[256];
    sfl_model m, other;
    float x[2 * 20] = { 0 };
    uint8_t y[2] = { 1, 5 };   /* 5 is not a class of a 5-class model */

    assert_int_equal(sfl_model_create(&m, "mlp:20-16-8-5", err, sizeof err), 0);
    assert_int_equal(sfl_model_create(&other, "mlp:20-16-5", err, sizeof err), 0);
    assert_null(sfl_workspace_new(&m, 0));
    sfl_workspace *ws = sfl_workspace_new(&m, 1), *wo = sfl_workspace_new(&other, 2);
    assert_non_null(ws);
    assert_non_null(wo);
    assert_true(isnan(sfl_model_loss(&m, ws, m.params, x, y, 2, NULL, NULL)));   /* n > max */
    assert_true(isnan(sfl_model_loss(&m, ws, m.params, x, y, 0, NULL, NULL)));
    assert_true(isnan(sfl_model_loss(&m, wo, m.params, x, y, 1, NULL, NULL)));   /* shape */
    assert_true(isnan(sfl_model_loss(&m, ws, m.params, x, y + 1, 1, NULL, NULL)));
    assert_false(isnan(sfl_model_loss(&m, ws, m.params, x, y, 1, NULL, NULL)));

    /* evaluate and train refuse data that does not fit the model */
    uint8_t dx[3 * 21] = { 0 };
    uint8_t dy[3] = { 0, 1, 2 };
    sfl_dataset d = { .px = dx, .y = dy, .n = 3, .dim = 21, .classes = 10 };
    double acc, loss;
    sfl_train_opts o = { .epochs = 1, .batch = 2, .lr = 0.1f };
    assert_int_equal(sfl_model_evaluate(&m, &d, &acc, &loss), SFL_EINVAL);
    assert_int_equal(sfl_model_train(&m, &d, &o, &loss), SFL_EINVAL);
    d.dim = 20;
    assert_int_equal(sfl_model_evaluate(&m, &d, &acc, &loss), 0);
    assert_true(fabs(acc - 1.0 / 3) < 1e-9 || acc == 0 || fabs(acc - 2.0 / 3) < 1e-9 ||
                acc == 1);
    dy[2] = 7;
    assert_int_equal(sfl_model_evaluate(&m, &d, &acc, &loss), SFL_EINVAL);
    dy[2] = 2;

    const sfl_train_opts bad[] = {
        { .epochs = 0, .batch = 2, .lr = 0.1f },
        { .epochs = 1001, .batch = 2, .lr = 0.1f },
        { .epochs = 1, .batch = 0, .lr = 0.1f },
        { .epochs = 1, .batch = 65537, .lr = 0.1f },
        { .epochs = 1, .batch = 2, .lr = 0.0f },
        { .epochs = 1, .batch = 2, .lr = NAN },
        { .epochs = 1, .batch = 2, .lr = INFINITY },
        { .epochs = 1, .batch = 2, .lr = 0.1f, .momentum = 1.0f },
        { .epochs = 1, .batch = 2, .lr = 0.1f, .momentum = -0.5f },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(sfl_model_train(&m, &d, &bad[i], &loss), SFL_EINVAL);
    assert_int_equal(sfl_model_train(&m, &d, &o, &loss), 0);

    /* a step size that makes the loss overflow is reported, not hidden */
    for (int i = 0; i < 3 * 20; i++)
        dx[i] = 255;
    sfl_model_init(&m, 1);
    o.lr = 1e30f;
    o.epochs = 5;
    assert_int_equal(sfl_model_train(&m, &d, &o, &loss), SFL_ERANGE);

    sfl_workspace_free(ws);
    sfl_workspace_free(wo);
    sfl_model_free(&m);
    sfl_model_free(&other);
}

static void test_train_logreg_real(void **state)
{
    (void)state;
    enum { N = 2000 };
    char err[512];
    uint32_t idx[N];
    sfl_dataset d;
    sfl_model m, again;

    for (uint32_t i = 0; i < N; i++)
        idx[i] = i;
    int rc = sfl_data_load(datadir, "train", idx, N, &d, err, sizeof err);
    if (rc)
        print_error("%s\n", err);
    assert_int_equal(rc, 0);
    assert_int_equal(sfl_model_create(&m, "logreg", err, sizeof err), 0);
    assert_int_equal(sfl_model_create(&again, "logreg", err, sizeof err), 0);
    sfl_model_init(&m, 5);
    sfl_model_init(&again, 5);

    double acc0, loss0, acc1, loss1, mean, mean2;
    assert_int_equal(sfl_model_evaluate(&m, &d, &acc0, &loss0), 0);
    sfl_train_opts o = { .epochs = 5, .batch = 32, .lr = 0.1f, .seed = 5, .shard = 0,
                         .round = 0 };
    assert_int_equal(sfl_model_train(&m, &d, &o, &mean), 0);
    assert_int_equal(sfl_model_evaluate(&m, &d, &acc1, &loss1), 0);
    assert_true(isfinite(mean));
    print_message("logreg 2000: loss %.4f -> %.4f, accuracy %.4f -> %.4f, train %.4f\n", loss0,
                  loss1, acc0, acc1, mean);
    assert_true(loss1 < 0.5 * loss0);
    assert_true(acc1 > 0.7 && acc1 > acc0 + 0.5);

    /* evaluate's batches of 1000 see the same rows as one batch of all N */
    float *x = malloc((size_t)N * 784 * sizeof *x);
    uint8_t y[N];
    sfl_workspace *ws = sfl_workspace_new(&m, N);
    assert_non_null(x);
    assert_non_null(ws);
    sfl_dataset_gather(&d, NULL, N, x, y);
    assert_memory_equal(y, d.y, N);
    size_t hits;
    double whole = sfl_model_loss(&m, ws, m.params, x, y, N, NULL, &hits);
    assert_true(fabs(whole - loss1) < 1e-9 * (1 + whole));
    assert_true((double)hits / N == acc1);
    sfl_workspace_free(ws);
    free(x);

    /* the same options replay bit for bit; another round shuffles otherwise */
    assert_int_equal(sfl_model_train(&again, &d, &o, &mean2), 0);
    assert_memory_equal(m.params, again.params, m.nparams * sizeof(float));
    assert_true(mean == mean2);
    sfl_model_init(&again, 5);
    o.round = 1;
    assert_int_equal(sfl_model_train(&again, &d, &o, &mean2), 0);
    assert_memory_not_equal(m.params, again.params, m.nparams * sizeof(float));

    /* momentum also learns */
    sfl_model_init(&again, 5);
    o.momentum = 0.9f;
    o.lr = 0.01f;
    assert_int_equal(sfl_model_train(&again, &d, &o, &mean2), 0);
    assert_int_equal(sfl_model_evaluate(&again, &d, &acc1, &loss1), 0);
    print_message("with momentum: loss %.4f, accuracy %.4f\n", loss1, acc1);
    assert_true(loss1 < 0.5 * loss0 && acc1 > 0.7);

    sfl_model_free(&m);
    sfl_model_free(&again);
    sfl_dataset_free(&d);
}

int main(int argc, char **argv)
{
    if (sodium_init() < 0)
        return 1;
    if (argc > 1)
        datadir = argv[1];
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spec_errors),
        cmocka_unit_test(test_nparams),
        cmocka_unit_test(test_init_reproducible),
        cmocka_unit_test(test_gradient_finite_differences),
        cmocka_unit_test(test_logreg_gradient_closed_form),
        cmocka_unit_test(test_loss_misuse),
        cmocka_unit_test(test_train_logreg_real),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
