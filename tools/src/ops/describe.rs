//! How `inspect` describes a device op: each family implements [`Describe`]
//! for its runtime parameter struct; [`super::describe`] dispatches over the device
//! op list (in `ops/mod.rs`) and [`Inspect`] keeps the model's byte counts.

use serde_json::Value;
use tinygnn::format::{Activation, Section, WeightBits};
use tinygnn::Model;

/// One device op as `inspect` prints it: its activation, a summary of its
/// quantization parameters and its attributes.
pub struct Described {
    /// The activation (`-` for none).
    pub act: String,
    /// The quantization parameters.
    pub quant: String,
    /// Attributes (JSON object).
    pub attrs: Value,
}

impl Described {
    /// A description.
    pub fn new(act: String, quant: impl Into<String>, attrs: Value) -> Described {
        Described {
            act,
            quant: quant.into(),
            attrs,
        }
    }
}

/// The model being inspected, the op's output and the byte counts so far.
pub struct Inspect<'m, 'a> {
    /// The model.
    pub model: &'a Model<'m>,
    /// The op's output tensor id.
    pub out: u8,
    /// Weight bytes.
    pub weight_bytes: usize,
    /// Of those, packed int4.
    pub int4_bytes: usize,
    /// Parameter bytes (records and tables).
    pub param_bytes: usize,
    /// Bias bytes.
    pub bias_bytes: usize,
}

impl<'m, 'a> Inspect<'m, 'a> {
    /// A fresh count over `model`.
    pub fn new(model: &'a Model<'m>) -> Self {
        Inspect {
            model,
            out: 0,
            weight_bytes: 0,
            int4_bytes: 0,
            param_bytes: 0,
            bias_bytes: 0,
        }
    }

    /// Counts a weight section; returns its precision's name.
    pub fn weights(&mut self, s: &Section) -> &'static str {
        let n = s.weight_bytes().len as usize;
        self.weight_bytes += n;
        if s.weight_bits() == WeightBits::I4 {
            self.int4_bytes += n;
        }
        match s.weight_bits() {
            WeightBits::I8 => "int8",
            WeightBits::I4 => "int4",
            WeightBits::I2 => "int2",
        }
    }

    /// Counts parameter bytes.
    pub fn params(&mut self, len: u32) {
        self.param_bytes += len as usize;
    }

    /// Channels of the op's output.
    pub fn out_channels(&self) -> usize {
        self.model
            .tensors()
            .get(self.out as usize)
            .map_or(0, |t| t.channels as usize)
    }

    /// Counts one bias per output channel.
    pub fn out_biases(&mut self) {
        self.bias_bytes += 4 * self.out_channels();
    }

    /// Summary of the (mult, shift) records of a params section for the output channels.
    pub fn mult_summary(&self, params: Section) -> String {
        let bytes = self.model.data(params);
        let n = self.out_channels();
        let mut shifts = (i32::MAX, i32::MIN);
        for c in 0..n {
            let (_, _, s) = tinygnn::kernels::requant::channel_record_of(bytes, n, c);
            shifts = (shifts.0.min(s), shifts.1.max(s));
        }
        if n == 0 {
            return String::new();
        }
        let form = match tinygnn::format::params_form(bytes.len(), n) {
            Some(tinygnn::format::ParamsForm::Compact) => ", compact",
            _ => "",
        };
        format!("{n} ch, shift {}..{}{form}", shifts.0, shifts.1)
    }
}

/// An activation as `inspect` prints it.
pub fn act_str(a: &Activation) -> String {
    match a {
        Activation::None => "-".into(),
        Activation::Relu => "relu".into(),
        Activation::LeakyRelu { alpha_q16 } => {
            format!("leaky_relu({:.4})", *alpha_q16 as f64 / 65536.0)
        }
    }
}

/// `mult M shift S`.
pub fn mult_shift(mult: i32, shift: i32) -> String {
    format!("mult {mult} shift {shift}")
}

/// How `inspect` describes one device op.
pub trait Describe {
    /// The op's activation, quantization summary and attributes; counts its bytes.
    fn describe(&self, cx: &mut Inspect<'_, '_>) -> Described;
}
