//! `gine_conv`: GINEConv's aggregation `(1 + ε)·x_i + Σ_{j→i} ReLU(x_j +
//! lin(e_ji))` over the spec's edge input (`lin` only with `edge_dim`;
//! otherwise `e_ji` itself).

use anyhow::{bail, Result};
use serde_json::json;
use tinygnn::format::writer::ChannelRecord;
use tinygnn::format::{Op, Section, AGG_FRAC_BITS};
use tinygnn::ops;
use tinygnn::quant::quantize_multiplier;

use super::common::{Mat, Parse, Rows, Tensor};
use super::describe::{mult_shift, Describe, Described, Inspect};
use super::host_op::HostOp;
use crate::lower::{channel_record, Lower};
use crate::st::Graphs;
use crate::weights::{quantize_weights_floored, scale_floor};

/// GINEConv aggregation.
#[derive(Debug, Clone, PartialEq)]
pub struct Gine {
    /// ε.
    pub eps: f64,
    /// `lin` (`[C, D]` weight and `[C]` bias) when `edge_dim` is given.
    pub lin: Option<(Mat, Vec<f64>)>,
}

impl HostOp for Gine {
    const TYPES: &'static [&'static str] = &["gine_conv"];

    fn parse(cx: &Parse<'_>) -> Result<(Self, Rows, usize)> {
        cx.need_node()?;
        let who = cx.who();
        let Some((ename, echannels)) = cx.edge_input else {
            bail!("{who}: reads edge features but the spec has no 'edge_input'");
        };
        let c = cx.channels();
        if let Some(i) = cx.opt_usize_attr("in_channels")? {
            cx.check_in(i)?;
        }
        let lin = match cx.opt_usize_attr("edge_dim")? {
            Some(d) => {
                let d = cx.edge_dim(d)?;
                let w = cx.mat("lin_weight", c, d)?;
                let b = cx.bias("lin_bias", c, "[in_channels]")?;
                Some((w, b))
            }
            None => {
                if echannels != c {
                    bail!(
                        "{who}: without edge_dim the edge input '{ename}' must have the node channels {c}, it has {echannels}"
                    );
                }
                None
            }
        };
        let eps = cx.f64_attr("eps", 0.0)?;
        Ok((Gine { eps, lin }, Rows::Node, c))
    }

    fn type_name(&self) -> &'static str {
        "gine_conv"
    }

    fn device_name(&self) -> &'static str {
        "gine_conv"
    }

    fn reference(&self, ins: &[&Tensor], g: &Graphs) -> Tensor {
        let x = ins[0];
        let f = x.channels;
        let d = g.edge_dim;
        let attr = g.edge_attr.as_deref().unwrap_or(&[]);
        let mut out = x.map(|v| v * (1.0 + self.eps));
        let mut e = vec![0.0f64; f];
        for k in 0..g.num_edges() {
            let (s, t) = (g.sources[k] as usize, g.targets[k] as usize);
            let row = attr.get(k * d..(k + 1) * d).unwrap_or(&[]);
            match &self.lin {
                Some((w, b)) => {
                    for (c, ec) in e.iter_mut().enumerate() {
                        *ec = b[c]
                            + w.row(c)
                                .iter()
                                .zip(row)
                                .map(|(a, &v)| a * v as f64)
                                .sum::<f64>();
                    }
                }
                None => {
                    for (ec, &v) in e.iter_mut().zip(row) {
                        *ec = v as f64;
                    }
                }
            }
            for c in 0..f {
                out.data[t * f + c] += (x.data[s * f + c] + e[c]).max(0.0);
            }
        }
        out
    }

    fn lower(&self, cx: &mut Lower<'_, '_>) -> Result<Op> {
        let (edge_attr, s_e) = cx.edge_input()?;
        let frac = (1u64 << AGG_FRAC_BITS) as f64;
        let s_in = cx.s_in;
        let (edge_weights, recs) = match &self.lin {
            Some((m, b)) => {
                let floors: Vec<f64> = b.iter().map(|&x| scale_floor(x, s_e, None)).collect();
                let (q, scales) = quantize_weights_floored(&[m], false, &floors);
                let sec = cx.add_i8(&q[0]);
                let recs: Vec<ChannelRecord> = scales
                    .iter()
                    .zip(b)
                    .map(|(&sw, &bias)| {
                        let acc = s_e * sw;
                        channel_record(bias, acc, acc * frac / s_in)
                    })
                    .collect();
                (sec, recs)
            }
            None => {
                let (mult, shift) = quantize_multiplier(s_e * frac / s_in);
                let rec = ChannelRecord {
                    bias: 0,
                    mult,
                    shift,
                };
                (Section::default(), vec![rec; cx.channels])
            }
        };
        let edge_params = cx.add_params(&recs);
        let (mult, shift) = quantize_multiplier(s_in / (cx.s_out * frac));
        Ok(Op::GineConv(ops::GineConv {
            input: cx.input(),
            edge_attr,
            output: cx.output,
            one_plus_eps_q16: cx.q16(1.0 + self.eps)?,
            edge_weights,
            edge_params,
            mult,
            shift,
        }))
    }
}

impl Describe for ops::GineConv {
    fn describe(&self, cx: &mut Inspect<'_, '_>) -> Described {
        let wb = cx.weights(&self.edge_weights);
        cx.params(self.edge_params.len);
        cx.out_biases();
        Described::new(
            "-".into(),
            mult_shift(self.mult, self.shift),
            json!({"one_plus_eps": self.one_plus_eps_q16 as f64 / 65536.0,
                   "edge_lin": self.edge_weights.len > 0, "edge_weights": wb}),
        )
    }
}
