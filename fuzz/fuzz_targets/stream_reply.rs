//! The host's check of a streaming device's replies
//! (`tinygnn_cli::reply::parse_stream`, what `tinygnn stream` runs on every
//! frame it receives) on arbitrary bytes. The first 12 bytes say what the
//! host waits for; the rest is the byte stream from the device:
//!
//! | bytes | field |
//! |---|---|
//! | 0 | even: the device's info; odd: the output of a request |
//! | 1..5 | request id, u32 LE |
//! | 5..7 | nodes sent, u16 LE |
//! | 7..9 | graphs sent, u16 LE |
//! | 9..11 | output channels the device announced, u16 LE |
//! | 11 | rows known to be: 0 either, 1 per node, 2 per graph |
//!
//! Asserts, besides "no panic": an accepted output agrees with the request
//! (id, channels ≥ 1, rows = nodes or graphs, data = rows × channels bytes,
//! finite positive scale), an accepted info is within the documented
//! ranges, and whatever is accepted fits the frame limit the host sized
//! for the request.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tinygnn_cli::reply::{frame_limit, parse_stream, Answer, Asked, Expect, Level};

fuzz_target!(|data: &[u8]| {
    let Some((head, stream)) = data.split_first_chunk::<12>() else {
        return;
    };
    let u16_at = |i: usize| usize::from(u16::from_le_bytes([head[i], head[i + 1]]));
    let asked = Asked {
        id: u32::from_le_bytes([head[1], head[2], head[3], head[4]]),
        nodes: u16_at(5),
        graphs: u16_at(7),
        channels: u16_at(9),
        level: match head[11] % 3 {
            0 => None,
            1 => Some(Level::Node),
            _ => Some(Level::Graph),
        },
    };
    let expect = if head[0] % 2 == 0 {
        Expect::Info
    } else {
        Expect::Output(asked)
    };
    let limit = frame_limit(&expect);
    match parse_stream(stream, &expect) {
        Some(Ok(Answer::Output(o))) => {
            assert_eq!(o.id, asked.id);
            assert!(o.channels >= 1 && o.channels == asked.channels);
            assert!(o.rows == asked.nodes || o.rows == asked.graphs);
            assert!(o.rows <= asked.max_rows());
            assert_eq!(o.data.len(), o.rows * o.channels);
            assert!(o.data.len() < limit);
            assert!(o.scale.is_finite() && o.scale > 0.0);
            let level = asked.level_of(o.rows);
            if let Some(l) = asked.level {
                assert_eq!(level, l);
            }
        }
        Some(Ok(Answer::Info(i))) => {
            assert!(matches!(expect, Expect::Info));
            assert!(i.input_channels >= 1 && i.output_channels >= 1);
            assert!((1..=65535).contains(&i.max_nodes));
            assert!((1..=i.max_nodes).contains(&i.max_graphs));
            assert!(i.max_frame <= tinygnn_cli::reply::MAX_DEVICE_FRAME);
            assert!(i.model.len() < limit && i.cost_unit.len() < limit);
        }
        Some(Ok(Answer::Error { detail, .. })) => assert!(detail.len() < limit),
        Some(Err(e)) => {
            let _ = e.to_string();
        }
        None => {}
    }
});
