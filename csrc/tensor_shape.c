#include "tensor_shape.h"

#include <string.h>

#include "status.h"

static int check_dim(const ln_tensor *t, int dim, int ndim_allowed)
{
    char s[256];
    if (dim < 0 || dim >= ndim_allowed)
        return ln_error(LN_EINVAL, "dimension %d is out of range for shape %s (1..%d)",
                        dim + 1, ln_tensor_shape_string(t, s, sizeof s), ndim_allowed);
    return LN_OK;
}

/* Fills a new contiguous tensor of view's shape with view's elements: the one
 * place these ops move data, through the device's strided copy. */
static int materialize(ln_tensor *out, const ln_tensor *view)
{
    LN_TRY(ln_tensor_alloc(out, ln_tensor_device(view), view->dtype, view->ndim,
                           view->shape));
    int st = ln_tensor_copy(out, view);
    if (st != LN_OK)
        ln_tensor_release(out);
    return st;
}

int ln_tensor_permute(ln_tensor *out, const ln_tensor *t, int ndim, const int *perm)
{
    char s[256];
    int seen[LN_MAX_DIMS] = {0};
    memset(out, 0, sizeof *out);
    LN_TRY(ln_tensor_check_live(t));
    if (ndim != t->ndim)
        return ln_error(LN_EINVAL, "expected a permutation of the %d dimensions of shape "
                        "%s, got %d dimensions", t->ndim,
                        ln_tensor_shape_string(t, s, sizeof s), ndim);
    for (int i = 0; i < ndim; i++) {
        LN_TRY(check_dim(t, perm[i], t->ndim));
        if (seen[perm[i]]++)
            return ln_error(LN_EINVAL, "dimension %d appears twice in the permutation "
                            "of shape %s", perm[i] + 1,
                            ln_tensor_shape_string(t, s, sizeof s));
    }
    /* a borrowed, reordered view of t (no reference taken: it only lives here) */
    ln_tensor view = *t;
    for (int i = 0; i < ndim; i++) {
        view.shape[i] = t->shape[perm[i]];
        view.stride[i] = t->stride[perm[i]];
    }
    return materialize(out, &view);
}

int ln_tensor_transpose(ln_tensor *out, const ln_tensor *t, int d1, int d2)
{
    int perm[LN_MAX_DIMS];
    memset(out, 0, sizeof *out);
    LN_TRY(ln_tensor_check_live(t));
    LN_TRY(check_dim(t, d1, t->ndim));
    LN_TRY(check_dim(t, d2, t->ndim));
    for (int i = 0; i < t->ndim; i++)
        perm[i] = i;
    perm[d1] = d2;
    perm[d2] = d1;
    return ln_tensor_permute(out, t, t->ndim, perm);
}

int ln_tensor_unsqueeze(ln_tensor *out, const ln_tensor *t, int dim)
{
    char s[256];
    memset(out, 0, sizeof *out);
    LN_TRY(ln_tensor_check_live(t));
    if (t->ndim == LN_MAX_DIMS)
        return ln_error(LN_EINVAL, "shape %s already has the most dimensions allowed (%d)",
                        ln_tensor_shape_string(t, s, sizeof s), LN_MAX_DIMS);
    LN_TRY(check_dim(t, dim, t->ndim + 1));
    ln_tensor_share(out, t);
    for (int i = t->ndim; i > dim; i--) {
        out->shape[i] = t->shape[i - 1];
        out->stride[i] = t->stride[i - 1];
    }
    /* any stride is right for a size-1 dimension; this one keeps a
     * contiguous tensor's strides row-major */
    out->shape[dim] = 1;
    out->stride[dim] = dim < t->ndim ? t->shape[dim] * t->stride[dim] : 1;
    out->ndim = t->ndim + 1;
    return LN_OK;
}

int ln_tensor_squeeze(ln_tensor *out, const ln_tensor *t, int dim)
{
    memset(out, 0, sizeof *out);
    LN_TRY(ln_tensor_check_live(t));
    if (dim >= 0)
        LN_TRY(check_dim(t, dim, t->ndim));
    ln_tensor_share(out, t);
    int nd = 0;
    for (int i = 0; i < t->ndim; i++) {
        int removed = t->shape[i] == 1 && (dim < 0 || dim == i);
        if (removed)
            continue;
        out->shape[nd] = t->shape[i];
        out->stride[nd] = t->stride[i];
        nd++;
    }
    out->ndim = nd;
    return LN_OK;
}

int ln_tensor_select(ln_tensor *out, const ln_tensor *t, int dim, int64_t index)
{
    char s[256];
    memset(out, 0, sizeof *out);
    LN_TRY(ln_tensor_check_live(t));
    if (t->ndim == 0)
        return ln_error(LN_EINVAL, "a scalar tensor has no dimension to index");
    LN_TRY(check_dim(t, dim, t->ndim));
    if (index < 0 || index >= t->shape[dim])
        return ln_error(LN_EINVAL, "index %lld is out of range for dimension %d of shape "
                        "%s (1..%lld)", (long long)index + 1, dim + 1,
                        ln_tensor_shape_string(t, s, sizeof s), (long long)t->shape[dim]);
    ln_tensor_share(out, t);
    out->offset += index * t->stride[dim];
    for (int i = dim; i + 1 < t->ndim; i++) {
        out->shape[i] = t->shape[i + 1];
        out->stride[i] = t->stride[i + 1];
    }
    out->ndim = t->ndim - 1;
    return LN_OK;
}

/* The checks cat and stack share: a non-empty list of live tensors of one
 * dtype and device. */
static int check_list(int n, const ln_tensor *const *ts)
{
    if (n < 1)
        return ln_error(LN_EINVAL, "expected a non-empty list of tensors");
    for (int i = 0; i < n; i++) {
        if (ln_tensor_check_live(ts[i]) != LN_OK)
            return ln_error(LN_EFREED, "tensor %d of the list was freed", i + 1);
        if (ts[i]->dtype != ts[0]->dtype)
            return ln_error(LN_EINVAL, "tensor %d of the list is %s but tensor 1 is %s; "
                            "convert with t:to(dtype)", i + 1, ln_dtype_name(ts[i]->dtype),
                            ln_dtype_name(ts[0]->dtype));
        if (ln_tensor_device(ts[i]) != ln_tensor_device(ts[0]))
            return ln_error(LN_EINVAL, "tensor %d of the list is on %s but tensor 1 is on "
                            "%s; move it with t:to(device)", i + 1,
                            ln_tensor_device(ts[i])->name, ln_tensor_device(ts[0])->name);
    }
    return LN_OK;
}

int ln_tensor_cat(ln_tensor *out, int n, const ln_tensor *const *ts, int dim)
{
    char a[256], b[256];
    memset(out, 0, sizeof *out);
    LN_TRY(check_list(n, ts));
    const ln_tensor *first = ts[0];
    if (first->ndim == 0)
        return ln_error(LN_EINVAL, "scalar tensors cannot be concatenated (use stack)");
    LN_TRY(check_dim(first, dim, first->ndim));
    int64_t shape[LN_MAX_DIMS];
    memcpy(shape, first->shape, sizeof(int64_t) * (size_t)first->ndim);
    shape[dim] = 0;
    for (int i = 0; i < n; i++) {
        int ok = ts[i]->ndim == first->ndim;
        for (int d = 0; ok && d < first->ndim; d++)
            ok = d == dim || ts[i]->shape[d] == first->shape[d];
        if (!ok)
            return ln_error(LN_EINVAL, "tensor %d of the list has shape %s but tensor 1 has "
                            "%s; sizes must match except along dimension %d", i + 1,
                            ln_tensor_shape_string(ts[i], a, sizeof a),
                            ln_tensor_shape_string(first, b, sizeof b), dim + 1);
        if (ts[i]->shape[dim] > INT64_MAX - shape[dim])
            return ln_error(LN_EINVAL, "the joined size along dimension %d is too large",
                            dim + 1);
        shape[dim] += ts[i]->shape[dim];
    }
    LN_TRY(ln_tensor_alloc(out, ln_tensor_device(first), first->dtype, first->ndim, shape));
    int64_t at = 0;
    int st = LN_OK;
    for (int i = 0; i < n && st == LN_OK; i++) {
        ln_tensor part = {0};
        st = ln_tensor_narrow(&part, out, dim, at, ts[i]->shape[dim]);
        if (st == LN_OK)
            st = ln_tensor_copy(&part, ts[i]);
        ln_tensor_release(&part);
        at += ts[i]->shape[dim];
    }
    if (st != LN_OK)
        ln_tensor_release(out);
    return st;
}

int ln_tensor_stack(ln_tensor *out, int n, const ln_tensor *const *ts, int dim)
{
    char a[256], b[256];
    memset(out, 0, sizeof *out);
    LN_TRY(check_list(n, ts));
    const ln_tensor *first = ts[0];
    if (first->ndim == LN_MAX_DIMS)
        return ln_error(LN_EINVAL, "shape %s already has the most dimensions allowed (%d)",
                        ln_tensor_shape_string(first, a, sizeof a), LN_MAX_DIMS);
    LN_TRY(check_dim(first, dim, first->ndim + 1));
    for (int i = 1; i < n; i++)
        if (!ln_tensor_same_shape(ts[i], first))
            return ln_error(LN_EINVAL, "tensor %d of the list has shape %s but tensor 1 has "
                            "%s; stacked tensors must have one shape", i + 1,
                            ln_tensor_shape_string(ts[i], a, sizeof a),
                            ln_tensor_shape_string(first, b, sizeof b));
    int64_t shape[LN_MAX_DIMS];
    for (int d = 0, s = 0; d <= first->ndim; d++)
        shape[d] = d == dim ? n : first->shape[s++];
    LN_TRY(ln_tensor_alloc(out, ln_tensor_device(first), first->dtype, first->ndim + 1,
                           shape));
    int st = LN_OK;
    for (int i = 0; i < n && st == LN_OK; i++) {
        ln_tensor part = {0};
        st = ln_tensor_select(&part, out, dim, i);
        if (st == LN_OK)
            st = ln_tensor_copy(&part, ts[i]);
        ln_tensor_release(&part);
    }
    if (st != LN_OK)
        ln_tensor_release(out);
    return st;
}
