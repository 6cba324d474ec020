//! `sage_conv`: PyG's SAGEConv, `lin_l(agg_{j→i} x_j) + lin_r(x_i)`, mean,
//! max or sum aggregation (an empty neighbourhood gives 0), optionally L2
//! normalised; BatchNorm and activations fused (not with `normalize`).

use anyhow::{bail, Result};
use serde_json::json;
use tinygnn::format::{Op, TensorDesc};
use tinygnn::ops;

use super::common::{linear, take, Aggr, BatchNorm, Mat, Parse, Rows, Tensor};
use super::describe::{act_str, Describe, Described, Inspect};
use super::host_op::HostOp;
use crate::lower::Lower;
use crate::st::Graphs;

/// SAGEConv.
#[derive(Debug, Clone, PartialEq)]
pub struct Sage {
    /// `lin_l.weight`.
    pub wl: Mat,
    /// `lin_l.bias` (zeros when absent).
    pub b: Vec<f64>,
    /// `lin_r.weight` if `root_weight`.
    pub wr: Option<Mat>,
    /// Aggregation.
    pub aggr: Aggr,
    /// L2-normalise the output.
    pub normalize: bool,
}

/// `agg_{j→i} x_j` over the graph's edges (edges naming a row outside `x`
/// are skipped; an empty neighbourhood gives 0).
pub fn aggregate(x: &Tensor, g: &Graphs, aggr: Aggr) -> Tensor {
    let ch = x.channels;
    let max = aggr == Aggr::Max;
    let mut agg = Tensor {
        data: vec![if max { f64::NEG_INFINITY } else { 0.0 }; x.rows * ch],
        ..x.clone()
    };
    let mut count = vec![0usize; x.rows];
    for (&s, &t) in g.sources.iter().zip(&g.targets) {
        let (s, t) = (s as usize, t as usize);
        if s >= x.rows || t >= x.rows {
            continue;
        }
        count[t] += 1;
        for k in 0..ch {
            let v = x.data[s * ch + k];
            let a = &mut agg.data[t * ch + k];
            *a = if max { a.max(v) } else { *a + v };
        }
    }
    for (i, &n) in count.iter().enumerate() {
        for a in &mut agg.data[i * ch..(i + 1) * ch] {
            if n == 0 {
                *a = 0.0;
            } else if aggr == Aggr::Mean {
                *a /= n as f64;
            }
        }
    }
    agg
}

impl Sage {
    fn mats(&self) -> Vec<&Mat> {
        std::iter::once(&self.wl).chain(self.wr.as_ref()).collect()
    }
}

impl HostOp for Sage {
    const TYPES: &'static [&'static str] = &["sage_conv"];

    fn parse(cx: &Parse<'_>) -> Result<(Self, Rows, usize)> {
        cx.need_node()?;
        let (i, o) = cx.in_out()?;
        let aggr = cx.aggr_attr(Aggr::Mean)?;
        let root = cx.bool_attr("root_weight", true)?;
        if cx.bool_attr("project", false)? {
            bail!("{}: project=True is not supported", cx.who());
        }
        let wl = cx.mat("weight_l", o, i)?;
        let b = cx.bias("bias_l", o, "[out_channels]")?;
        let wr = if root {
            Some(cx.mat("weight_r", o, i)?)
        } else {
            None
        };
        let normalize = cx.bool_attr("normalize", false)?;
        let sage = Sage {
            wl,
            b,
            wr,
            aggr,
            normalize,
        };
        Ok((sage, Rows::Node, o))
    }

    fn type_name(&self) -> &'static str {
        "sage_conv"
    }

    fn device_name(&self) -> &'static str {
        "sage_conv"
    }

    fn reference(&self, ins: &[&Tensor], g: &Graphs) -> Tensor {
        let x = ins[0];
        let agg = aggregate(x, g, self.aggr);
        let mut out = linear(&agg, &self.wl, Some(&self.b));
        if let Some(wr) = &self.wr {
            let r = linear(x, wr, None);
            for (o, v) in out.data.iter_mut().zip(r.data) {
                *o += v;
            }
        }
        if self.normalize {
            let c = out.channels;
            for r in 0..out.rows {
                let row = &mut out.data[r * c..(r + 1) * c];
                let n = row.iter().map(|v| v * v).sum::<f64>().sqrt().max(1e-12);
                row.iter_mut().for_each(|v| *v /= n);
            }
        }
        out
    }

    fn fold_bn(&mut self, bn: &BatchNorm) -> bool {
        if self.normalize {
            return false;
        }
        match &mut self.wr {
            Some(wr) => bn.fold(&mut [&mut self.wl, wr], &mut self.b),
            None => bn.fold(&mut [&mut self.wl], &mut self.b),
        }
        true
    }

    fn fuses_act(&self) -> bool {
        !self.normalize
    }

    fn has_weights(&self) -> bool {
        true
    }

    /// With `normalize` the scale is always one per tensor: no choice.
    fn scaled_mats(&self) -> Option<Vec<&Mat>> {
        (!self.normalize).then(|| self.mats())
    }

    /// Not with `normalize`: the L2 norm mixes the channels.
    fn take_channels(&self, keep: &[usize]) -> Option<Self> {
        if self.normalize {
            return None;
        }
        Some(Sage {
            wl: self.wl.take_rows(keep)?,
            b: take(&self.b, keep)?,
            wr: match &self.wr {
                Some(wr) => Some(wr.take_rows(keep)?),
                None => None,
            },
            ..*self
        })
    }

    fn permute_input(&self, perm: &[usize]) -> Option<Self> {
        Some(Sage {
            wl: self.wl.permute_cols(perm)?,
            b: self.b.clone(),
            wr: match &self.wr {
                Some(wr) => Some(wr.permute_cols(perm)?),
                None => None,
            },
            ..*self
        })
    }

    /// `[agg(x), x]` (or `agg(x)` without a root weight).
    fn feedback_input(&self, x: &Tensor, g: &Graphs) -> Option<Tensor> {
        let ch = x.channels;
        let agg = aggregate(x, g, self.aggr);
        let root = self.wr.is_some();
        let width = if root { 2 * ch } else { ch };
        let mut data = Vec::with_capacity(x.rows * width);
        for r in 0..x.rows {
            data.extend_from_slice(agg.row(r));
            if root {
                data.extend_from_slice(x.row(r));
            }
        }
        Some(Tensor {
            rows: x.rows,
            channels: width,
            data,
        })
    }

    fn output_is_projection(&self) -> bool {
        !self.normalize
    }

    /// Normalised rows lie in [−1, 1]: scale 1/127, zero point 0.
    fn fixed_output(&self, _input: &TensorDesc) -> Option<(f32, i8)> {
        self.normalize.then_some((1.0 / 127.0, 0))
    }

    fn lower(&self, cx: &mut Lower<'_, '_>) -> Result<Op> {
        let (weights_l, weights_r, params) = cx.weighted(&self.mats(), &self.b, self.normalize)?;
        Ok(Op::SageConv(ops::SageConv {
            input: cx.input(),
            output: cx.output,
            aggr: self.aggr.device(),
            weights_l,
            weights_r,
            params,
            act: cx.act,
            normalize: self.normalize,
        }))
    }
}

impl Describe for ops::SageConv {
    fn describe(&self, cx: &mut Inspect<'_, '_>) -> Described {
        let wb = cx.weights(&self.weights_l);
        cx.weights(&self.weights_r);
        cx.params(self.params.len);
        cx.out_biases();
        let aggr = format!("{:?}", self.aggr).to_lowercase();
        Described::new(
            act_str(&self.act),
            cx.mult_summary(self.params),
            json!({"weights": wb, "aggr": aggr, "root_weight": self.weights_r.len > 0,
                   "normalize": self.normalize}),
        )
    }
}
