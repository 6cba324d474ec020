//! Incremental runs on a board ([`run_incremental`]): the bundle's samples
//! are one graph whose node features change from sample to sample (a
//! sensor network's readings). Sample 0 runs in full
//! ([`tinygnn::Session::prepare_incremental`]); every later sample runs as
//! an update of the nodes whose feature rows differ from the previous
//! sample's ([`tinygnn::Session::update`]), then once more in full
//! ([`tinygnn::Session::run_prepared`]) to compare: the two outputs must be
//! the same bytes. The reported output and [`Event::Cost`] are the update's;
//! [`Event::Incremental`] gives the number of changed nodes and the full
//! run's cost, so one run measures the saving against the fraction of nodes
//! that changed.

use crate::bundle::{Features as BundleFeatures, Sample};
use crate::{
    graph_input, load_model, report_output, AppError, Board, Bundle, Clock, Event, Report, Summary,
    ENGINE,
};

/// Arena bytes of incremental runs over `s`'s graph: the runtime's
/// [`tinygnn::Model::incremental_arena_bytes`] plus the list of changed
/// nodes (two bytes per node, rounded up to 16 so the session's arena
/// after it stays aligned).
pub fn incremental_arena(model: &tinygnn::Model<'_>, s: &Sample<'_>) -> usize {
    let (n, e, g) = (
        usize::from(s.nodes),
        s.edges as usize,
        usize::from(s.graphs),
    );
    let sparse = matches!(s.features, BundleFeatures::SparseI8 { .. });
    changed_region(n).saturating_add(model.incremental_arena_bytes(n, e, g, sparse))
}

fn changed_region(nodes: usize) -> usize {
    nodes.saturating_mul(2).div_ceil(16) * 16
}

/// Writes the nodes whose feature rows differ between `a` and `b` (same
/// node count and feature kind) into `out`; returns how many.
fn changed_rows(a: &Sample<'_>, b: &Sample<'_>, out: &mut [u16]) -> Option<usize> {
    let (n, f) = (usize::from(b.nodes), usize::from(b.channels));
    let mut k = 0usize;
    for i in 0..n {
        let differs = match (a.features, b.features) {
            (BundleFeatures::F32(x), BundleFeatures::F32(y)) => {
                let (r0, r1) = (i.checked_mul(f)?, (i + 1).checked_mul(f)?);
                x.get(r0..r1)?
                    .iter()
                    .zip(y.get(r0..r1)?)
                    .any(|(p, q)| p.to_bits() != q.to_bits())
            }
            (BundleFeatures::I8(x), BundleFeatures::I8(y)) => {
                let (r0, r1) = (i.checked_mul(f)?, (i + 1).checked_mul(f)?);
                x.get(r0..r1)? != y.get(r0..r1)?
            }
            (
                BundleFeatures::SparseI8 {
                    row_ptr: pa,
                    cols: ca,
                    values: va,
                },
                BundleFeatures::SparseI8 {
                    row_ptr: pb,
                    cols: cb,
                    values: vb,
                },
            ) => {
                let ra = *pa.get(i)? as usize..*pa.get(i + 1)? as usize;
                let rb = *pb.get(i)? as usize..*pb.get(i + 1)? as usize;
                ca.get(ra.clone())? != cb.get(rb.clone())? || va.get(ra)? != vb.get(rb)?
            }
            _ => return None,
        };
        if differs {
            *out.get_mut(k)? = i as u16;
            k += 1;
        }
    }
    Some(k)
}

/// Runs the bundle's samples as incremental updates of sample 0's graph
/// (see the module docs) and reports as [`crate::run`] does, plus one
/// [`Event::Incremental`] per sample.
pub fn run_incremental<R: Report, C: Clock>(b: &mut Board<'_, R, C>) -> Result<Summary, AppError> {
    let r = run_inner(b);
    match r {
        Ok(summary) => b.report.event(&Event::Summary {
            summary,
            unit: C::UNIT,
        }),
        Err(e) => b.report.event(&Event::Error(e)),
    }
    r
}

fn run_inner<R: Report, C: Clock>(b: &mut Board<'_, R, C>) -> Result<Summary, AppError> {
    let report = &mut b.report;
    report.event(&Event::Start {
        board: b.name,
        model_bytes: b.model.len(),
        bundle_bytes: b.inputs.len(),
        arena_bytes: b.arena.len(),
        engine: ENGINE,
    });
    let model = load_model(b.model)?;
    report.event(&Event::Model {
        ops: model.num_ops(),
        tensors: model.tensors().len(),
        input_channels: model.input_desc().channels,
        outputs: model.outputs().len(),
    });
    let bundle = Bundle::parse(b.inputs).map_err(AppError::Bundle)?;
    let Some(first) = bundle.samples().next() else {
        return Ok(Summary::default());
    };
    let first = first.map_err(AppError::Bundle)?;
    let needed = incremental_arena(&model, &first);
    if needed > b.arena.len() {
        return Err(AppError::ArenaTooSmall {
            sample: 0,
            needed: needed as u32,
            available: b.arena.len() as u32,
        });
    }
    let (front, arena) = b
        .arena
        .split_at_mut(changed_region(usize::from(first.nodes)));
    let changed: &mut [u16] = bytemuck::cast_slice_mut(front);
    let mut session = tinygnn::Session::new(&model, arena);
    let graph = graph_input(&first);
    let mut sum = Summary {
        arena_used: needed as u32,
        ..Summary::default()
    };
    let mut prev = first;
    let mut prepared = None;
    for (i, sample) in bundle.samples().enumerate() {
        let sample = sample.map_err(AppError::Bundle)?;
        let index = i as u16;
        report.event(&Event::Sample {
            index: i,
            nodes: sample.nodes,
            edges: sample.edges,
            graphs: sample.graphs,
        });
        let same_graph = sample.nodes == first.nodes
            && sample.sources == first.sources
            && sample.targets == first.targets
            && sample.edge_weight == first.edge_weight
            && sample.batch == first.batch;
        if !same_graph {
            return Err(AppError::Incremental {
                sample: index,
                why: "not sample 0's graph (incremental runs keep the graph, change features)",
            });
        }
        let input = graph_input(&sample);
        let fail = |error| AppError::Inference {
            sample: index,
            error,
        };
        let (cost, k) = match prepared {
            None => {
                b.clock.start();
                let p = session.prepare_incremental(&graph).map_err(fail)?;
                let cost = b.clock.elapsed();
                prepared = Some(p);
                (cost, usize::from(sample.nodes))
            }
            Some(p) => {
                let k = changed_rows(&prev, &sample, changed).ok_or(AppError::Incremental {
                    sample: index,
                    why: "feature rows of another kind than sample 0's",
                })?;
                b.clock.start();
                let r = session.update(&p, input.features, changed.get(..k).unwrap_or(&[]));
                let cost = b.clock.elapsed();
                r.map_err(fail)?;
                (cost, k)
            }
        };
        let out = session
            .output(0)
            .ok_or(fail(tinygnn::Error::InvalidOutputs))?;
        report_output(report, i, &out);
        let crc = crate::bundle::CRC.checksum(bytemuck::cast_slice(out.data));
        report.event(&Event::Cost {
            index: i,
            cost,
            unit: C::UNIT,
        });
        // The same sample in full, to compare.
        let p = prepared.ok_or(fail(tinygnn::Error::NotPrepared))?;
        b.clock.start();
        let full = session.run_prepared(&p, input.features).map_err(fail)?;
        let full_cost = b.clock.elapsed();
        if crate::bundle::CRC.checksum(bytemuck::cast_slice(full.data)) != crc {
            return Err(AppError::Incremental {
                sample: index,
                why: "the update's output differs from the full run's",
            });
        }
        report.event(&Event::Incremental {
            index: i,
            changed: k,
            full: full_cost,
            unit: C::UNIT,
        });
        sum.samples += 1;
        sum.cost_total += cost;
        sum.cost_max = sum.cost_max.max(cost);
        prev = sample;
    }
    Ok(sum)
}
