//! The f32 vector kernels of the ALS fit and scoring. Each sums in [`dot`]'s fixed
//! order, so a result is the same bits however many rows or outputs a kernel takes
//! at once.

#[inline]
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    // Eight independent sums let the compiler vectorise; the order is fixed.
    let n = a.len().min(b.len());
    let (ca, ra) = a[..n].as_chunks::<8>();
    let (cb, rb) = b[..n].as_chunks::<8>();
    let mut acc = [0f32; 8];
    for (x, y) in ca.iter().zip(cb) {
        acc = madd8(acc, x, y);
    }
    finish8(acc, ra, rb)
}

/// [`dot`] of `a` with four rows at once, each summed in [`dot`]'s order (so the
/// results are its results bit for bit), loading `a` once for the four.
#[inline]
pub(crate) fn dot4(a: &[f32], rows: [&[f32]; 4]) -> [f32; 4] {
    let n = rows.iter().fold(a.len(), |n, r| n.min(r.len()));
    let (ca, ra) = a[..n].as_chunks::<8>();
    let split = rows.map(|r| r[..n].as_chunks::<8>());
    let (c0, c1, c2, c3) = (split[0].0, split[1].0, split[2].0, split[3].0);
    // Four accumulators of their own, not one array of them, so that LLVM
    // vectorises along each row rather than across the four.
    let (mut s0, mut s1, mut s2, mut s3) = ([0f32; 8], [0f32; 8], [0f32; 8], [0f32; 8]);
    for ((((x, y0), y1), y2), y3) in ca.iter().zip(c0).zip(c1).zip(c2).zip(c3) {
        s0 = madd8(s0, x, y0);
        s1 = madd8(s1, x, y1);
        s2 = madd8(s2, x, y2);
        s3 = madd8(s3, x, y3);
    }
    let tails = [0, 1, 2, 3].map(|r| tail(ra, split[r].1));
    finish8x4(&[s0, s1, s2, s3], tails)
}

/// [`finish8`] of four rows at once, as four-lane sums across the rows: each
/// row's lanes are added in [`finish8`]'s order, so the results are its bits.
/// Out of line, as inlined it slows [`dot4`]'s loop (docs/benchmarks.md).
#[inline(never)]
fn finish8x4(s: &[[f32; 8]; 4], tails: [f32; 4]) -> [f32; 4] {
    let half: [[f32; 4]; 4] =
        std::array::from_fn(|r| std::array::from_fn(|j| s[r][j] + s[r][j + 4]));
    let column = |j: usize| -> [f32; 4] { std::array::from_fn(|r| half[r][j]) };
    let (c0, c1, c2, c3) = (column(0), column(1), column(2), column(3));
    std::array::from_fn(|r| ((c0[r] + c1[r]) + (c2[r] + c3[r])) + tails[r])
}

/// The sum of the products of `ra` and `rb`, in order from 0: [`dot`]'s tail.
#[inline]
fn tail(ra: &[f32], rb: &[f32]) -> f32 {
    let mut tail = 0f32;
    for (x, y) in ra.iter().zip(rb) {
        tail += x * y;
    }
    tail
}

/// `acc + x * y` lane by lane.
#[inline(always)]
fn madd8(acc: [f32; 8], x: &[f32; 8], y: &[f32; 8]) -> [f32; 8] {
    std::array::from_fn(|l| acc[l] + x[l] * y[l])
}

/// The sum of [`dot`]'s eight lanes and its tail, in its fixed order ([`dot4`]
/// sums four rows at once with [`finish8x4`]). Out of line, as [`finish8x4`] is.
#[inline(never)]
fn finish8(acc: [f32; 8], ra: &[f32], rb: &[f32]) -> f32 {
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) + tail(ra, rb)
}

/// `out[a] = dot(row a of m, x)` for the symmetric f x f matrix `m`, [`pack`]ed (its
/// rows are its columns), bit for bit: eight outputs at a time with [`dots8`].
#[inline]
pub(crate) fn matvec(out: &mut [f32], m: &[[f32; 8]], x: &[f32], f: usize) {
    for (out, block) in out.chunks_mut(8).zip(m.chunks_exact(f.max(1))) {
        let d = dots8(x, block);
        out.copy_from_slice(&d[..out.len()]);
    }
}

/// [`dot`] of `x` with eight vectors at once, bit for bit: `columns[l]` holds
/// element l of each of the eight. Each of [`dot`]'s eight partial sums is a
/// vector over the eight, so every step is a plain vector multiply and add.
#[inline(always)]
pub(crate) fn dots8(x: &[f32], columns: &[[f32; 8]]) -> [f32; 8] {
    let n = x.len().min(columns.len());
    let (xs, x_tail) = x[..n].as_chunks::<8>();
    let (cs, c_tail) = columns[..n].as_chunks::<8>();
    let mut acc = [[0f32; 8]; 8];
    for (x, c) in xs.iter().zip(cs) {
        for (k, acc) in acc.iter_mut().enumerate() {
            *acc = broadcast_madd8(*acc, x[k], &c[k]);
        }
    }
    let mut tail = [0f32; 8];
    for (&xl, c) in x_tail.iter().zip(c_tail) {
        tail = broadcast_madd8(tail, xl, c);
    }
    std::array::from_fn(|j| {
        ((acc[0][j] + acc[4][j]) + (acc[1][j] + acc[5][j]))
            + ((acc[2][j] + acc[6][j]) + (acc[3][j] + acc[7][j]))
            + tail[j]
    })
}

/// `acc + x * y` lane by lane for one `x`.
#[inline(always)]
fn broadcast_madd8(acc: [f32; 8], x: f32, y: &[f32; 8]) -> [f32; 8] {
    [
        acc[0] + x * y[0],
        acc[1] + x * y[1],
        acc[2] + x * y[2],
        acc[3] + x * y[3],
        acc[4] + x * y[4],
        acc[5] + x * y[5],
        acc[6] + x * y[6],
        acc[7] + x * y[7],
    ]
}

#[inline]
pub(crate) fn axpy(y: &mut [f32], a: f32, x: &[f32]) {
    for (y, x) in y.iter_mut().zip(x) {
        *y += a * x;
    }
}

/// Four [`axpy`]s in a row, `y += a[0] x[0]`, then `a[1] x[1]`, ..., in one pass
/// over `y`: each element gets the same four sums in the same order.
#[inline]
pub(crate) fn axpy4(y: &mut [f32], a: [f32; 4], x: [&[f32]; 4]) {
    let n = x.iter().fold(y.len(), |n, r| n.min(r.len()));
    let [x0, x1, x2, x3] = x.map(|x| &x[..n]);
    for ((((y, x0), x1), x2), x3) in y[..n].iter_mut().zip(x0).zip(x1).zip(x2).zip(x3) {
        let mut v = *y;
        v += a[0] * x0;
        v += a[1] * x1;
        v += a[2] * x2;
        v += a[3] * x3;
        *y = v;
    }
}

/// [`axpy`] of one `x` into four vectors, `y[k] += a[k] x`, in one pass over `x`.
#[inline]
pub(crate) fn axpy_into4(y: [&mut [f32]; 4], a: [f32; 4], x: &[f32]) {
    let [y0, y1, y2, y3] = y;
    for ((((x, y0), y1), y2), y3) in x.iter().zip(y0).zip(y1).zip(y2).zip(y3) {
        *y0 += a[0] * x;
        *y1 += a[1] * x;
        *y2 += a[2] * x;
        *y3 += a[3] * x;
    }
}

/// The rows of the row-major `rows` (n x f) in blocks of eight, element by element:
/// `packed[b * f + l]` holds element l of rows 8b..8b+8 (zeros past the last row).
pub(crate) fn pack(rows: &[f32], f: usize) -> Vec<[f32; 8]> {
    let blocks = (rows.len() / f.max(1)).div_ceil(8);
    let mut packed = vec![[0f32; 8]; blocks * f];
    for (i, row) in rows.chunks_exact(f.max(1)).enumerate() {
        for (l, &v) in row.iter().enumerate() {
            packed[i / 8 * f + l][i % 8] = v;
        }
    }
    packed
}
