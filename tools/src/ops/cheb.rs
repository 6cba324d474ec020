//! `cheb_conv`: PyG's ChebConv with `normalization='sym'` and `λmax = 2`,
//! `Σ_{k<K} T_k(L̂) x Θ_kᵀ + b` over the scaled Laplacian
//! `L̂ = −D^-½ A D^-½` (self-loops removed, degrees over the source index);
//! one device op `cheb_conv` running the Chebyshev polynomial in its
//! monomial form by Horner's rule (see [`monomial`]).

use anyhow::{anyhow, bail, Result};
use serde_json::json;
use tinygnn::format::Op;
use tinygnn::ops;

use super::common::{linear, propagate_once, BatchNorm, Mat, Parse, Rows, Tensor};
use super::describe::{act_str, Describe, Described, Inspect};
use super::host_op::HostOp;
use crate::lower::Lower;
use crate::st::Graphs;

/// The largest `K` the converter accepts (the GConvGRU/GConvLSTM
/// form; the monomial coefficients grow as `2^(K−1)` beyond).
pub const MAX_K: usize = 3;

/// ChebConv(in, out, K, normalization='sym').
#[derive(Debug, Clone, PartialEq)]
pub struct Cheb {
    /// `lins.k.weight` `[out, in]`, `k < K` (Θ_k).
    pub thetas: Vec<Mat>,
    /// Bias (zeros when absent).
    pub b: Vec<f64>,
    /// Whether the layer reads the graphs' edge weights.
    pub edge_weight: bool,
}

/// The coefficients `c[k][m]` of `L̂^m` in the Chebyshev polynomial `T_k`
/// (`T_0 = 1`, `T_1 = L̂`, `T_k = 2·L̂·T_{k−1} − T_{k−2}`).
fn chebyshev(k_max: usize) -> Vec<Vec<f64>> {
    let mut c: Vec<Vec<f64>> = Vec::with_capacity(k_max);
    for k in 0..k_max {
        let mut row = vec![0.0; k_max];
        match k {
            0 => row[0] = 1.0,
            1 => row[1] = 1.0,
            _ => {
                for m in 1..k_max {
                    row[m] += 2.0 * c[k - 1][m - 1];
                }
                for m in 0..k_max {
                    row[m] -= c[k - 2][m];
                }
            }
        }
        c.push(row);
    }
    c
}

/// The monomial form the device runs: `M_m = (−1)^m Σ_k c[k][m]·Θ_k`, so
/// that `Σ_k T_k(L̂) x Θ_kᵀ = Σ_m P^m x M_mᵀ` with `P = −L̂ = D^-½ A D^-½`
/// (for `K = 3`: `M_0 = Θ_0 − Θ_2`, `M_1 = −Θ_1`, `M_2 = 2·Θ_2`).
pub fn monomial(thetas: &[Mat]) -> Vec<Mat> {
    let k_max = thetas.len();
    let c = chebyshev(k_max);
    (0..k_max)
        .map(|m| {
            let sign = if m % 2 == 0 { 1.0 } else { -1.0 };
            let mut out = Mat {
                rows: thetas[0].rows,
                cols: thetas[0].cols,
                data: vec![0.0; thetas[0].data.len()],
            };
            for (k, t) in thetas.iter().enumerate() {
                let f = sign * c[k][m];
                if f != 0.0 {
                    for (o, v) in out.data.iter_mut().zip(&t.data) {
                        *o += f * v;
                    }
                }
            }
            out
        })
        .collect()
}

/// The `(source, target, coef)` of `L̂ = −D^-½ A D^-½` as PyG's
/// `get_laplacian(normalization='sym')` followed by ChebConv's `2L/λmax − I`
/// with `λmax = 2`: self-loops removed, `deg_j = Σ_{j→i} w_ji` over the
/// source index, `coef = −deg_j^-½ w_ji deg_i^-½`, `0^-½ = 0`.
pub fn cheb_edges(g: &Graphs, edge_weight: bool) -> Vec<(usize, usize, f64)> {
    let w = |e: usize| match (&g.edge_weight, edge_weight) {
        (Some(ws), true) => ws[e] as f64,
        _ => 1.0,
    };
    let mut deg = vec![0.0f64; g.num_nodes];
    let mut edges = Vec::with_capacity(g.num_edges());
    for e in 0..g.num_edges() {
        let (s, t) = (g.sources[e] as usize, g.targets[e] as usize);
        if s == t {
            continue;
        }
        if let Some(d) = deg.get_mut(s) {
            *d += w(e);
        }
        edges.push((s, t, w(e)));
    }
    let dinv: Vec<f64> = deg
        .iter()
        .map(|&d| if d > 0.0 { 1.0 / d.sqrt() } else { 0.0 })
        .collect();
    let at = |i: usize| dinv.get(i).copied().unwrap_or(0.0);
    edges
        .into_iter()
        .map(|(s, t, w)| (s, t, -at(s) * w * at(t)))
        .collect()
}

/// The reference, as PyG computes it: `Tx_0 = x`, `Tx_1 = L̂ x`,
/// `Tx_k = 2·L̂·Tx_{k−1} − Tx_{k−2}`, `out = Σ_k Tx_k Θ_kᵀ + b`.
pub fn reference(p: &Cheb, x: &Tensor, g: &Graphs) -> Tensor {
    let edges = cheb_edges(g, p.edge_weight);
    let mut out = linear(x, &p.thetas[0], Some(&p.b));
    let mut t0 = x.clone();
    let mut t1 = x.clone();
    for (k, th) in p.thetas.iter().enumerate().skip(1) {
        let mut t2 = propagate_once(&t1, &edges);
        if k >= 2 {
            for (a, b) in t2.data.iter_mut().zip(&t0.data) {
                *a = 2.0 * *a - b;
            }
        }
        for (o, v) in out.data.iter_mut().zip(linear(&t2, th, None).data) {
            *o += v;
        }
        if k >= 2 {
            t0 = t1;
        }
        t1 = t2;
    }
    out
}

impl HostOp for Cheb {
    const TYPES: &'static [&'static str] = &["cheb_conv"];

    fn parse(cx: &Parse<'_>) -> Result<(Self, Rows, usize)> {
        cx.need_node()?;
        let who = cx.who();
        let (i, o) = cx.in_out()?;
        let k = cx.usize_attr("K")?;
        if !(1..=MAX_K).contains(&k) {
            bail!(
                "{who}: K = {k} is not supported; tinygnn supports ChebConv with K = 1..={MAX_K}"
            );
        }
        match cx.attr("normalization") {
            Some(v) if v.as_str() == Some("sym") => {}
            None => bail!(
                "{who}: normalization None (L = D − A) is not supported; tinygnn supports \
                 ChebConv(normalization='sym') with lambda_max 2"
            ),
            Some(v) => bail!(
                "{who}: normalization {v} is not supported; tinygnn supports \
                 ChebConv(normalization='sym') with lambda_max 2"
            ),
        }
        let lambda_max = cx.f64_attr("lambda_max", 2.0)?;
        if lambda_max != 2.0 {
            bail!(
                "{who}: lambda_max {lambda_max} is not supported; tinygnn supports \
                 ChebConv(normalization='sym') with lambda_max 2 (the default)"
            );
        }
        let thetas = (0..k)
            .map(|h| cx.mat(&format!("weight_{h}"), o, i))
            .collect::<Result<Vec<_>>>()?;
        let p = Cheb {
            thetas,
            b: cx.bias("bias", o, "[out_channels]")?,
            edge_weight: cx.bool_attr("edge_weight", false)?,
        };
        Ok((p, Rows::Node, o))
    }

    fn type_name(&self) -> &'static str {
        "cheb_conv"
    }

    fn device_name(&self) -> &'static str {
        "cheb_conv"
    }

    fn reference(&self, ins: &[&Tensor], g: &Graphs) -> Tensor {
        reference(self, ins[0], g)
    }

    fn fold_bn(&mut self, bn: &BatchNorm) -> bool {
        let mut mats: Vec<&mut Mat> = self.thetas.iter_mut().collect();
        bn.fold(&mut mats, &mut self.b);
        true
    }

    fn fuses_act(&self) -> bool {
        true
    }

    fn has_weights(&self) -> bool {
        true
    }

    fn scaled_mats(&self) -> Option<Vec<&Mat>> {
        Some(self.thetas.iter().collect())
    }

    fn lower(&self, cx: &mut Lower<'_, '_>) -> Result<Op> {
        // The K monomial matrices add in one accumulator: one scale per
        // output channel for all, stacked M_0 … M_{K−1} (as TAGConv's).
        let mono = monomial(&self.thetas);
        let mats: Vec<&Mat> = mono.iter().collect();
        let (s_in, s_out) = (cx.s_in, cx.s_out);
        let floors: Vec<f64> = self
            .b
            .iter()
            .map(|&x| crate::weights::scale_floor(x, s_in, Some(s_out)))
            .collect();
        let mut lw = cx.quantize(&mats, &floors, false);
        cx.check_records(&lw.scales, &self.b, false);
        lw.q = vec![lw.q.concat()];
        let (weights, _) = cx.add_weights(&lw, mats[0].cols)?;
        let recs = cx.records(&lw.scales, &self.b);
        let params = cx.add_params(&recs);
        let k = u8::try_from(self.thetas.len())
            .map_err(|_| anyhow!("{}: K = {} is too large", cx.who, self.thetas.len()))?;
        Ok(Op::ChebConv(ops::ChebConv {
            input: cx.input(),
            output: cx.output,
            k,
            weights,
            params,
            act: cx.act,
            edge_weight: self.edge_weight,
        }))
    }
}

impl Describe for ops::ChebConv {
    fn describe(&self, cx: &mut Inspect<'_, '_>) -> Described {
        let wb = cx.weights(&self.weights);
        cx.params(self.params.len);
        cx.out_biases();
        Described::new(
            act_str(&self.act),
            cx.mult_summary(self.params),
            json!({"K": self.k, "weights": wb, "edge_weight": self.edge_weight,
                   "normalization": "sym", "lambda_max": 2.0}),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monomial_form_of_k3() {
        let m = |v: f64| Mat {
            rows: 1,
            cols: 1,
            data: vec![v],
        };
        let mono = monomial(&[m(1.0), m(10.0), m(100.0)]);
        let got: Vec<f64> = mono.iter().map(|x| x.data[0]).collect();
        assert_eq!(got, [1.0 - 100.0, -10.0, 200.0]);
        // T_3 = 4L³ − 3L: M_1 gains +3Θ_3, M_3 = −4Θ_3.
        let mono = monomial(&[m(0.0), m(0.0), m(0.0), m(1.0)]);
        let got: Vec<f64> = mono.iter().map(|x| x.data[0]).collect();
        assert_eq!(got, [0.0, 3.0, 0.0, -4.0]);
    }
}
