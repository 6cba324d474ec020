//! Prints the frames of docs/stream.md's examples: `cargo run -p tinygnn-proto --features std --example wire`.
use tinygnn_proto::{encode_body_vec, encode_vec, ErrorCode, ErrorReply, Message, OwnedRequest};

fn hex(b: &[u8]) -> String {
    b.iter()
        .map(|x| format!("{x:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn main() {
    let req = OwnedRequest::f32(5, 2, 1, &[1.0, 0.5], &[0], &[1], None, None);
    let err = ErrorReply {
        id: Some(5),
        code: ErrorCode::Capacity,
        detail: "",
    };
    for (name, m) in [
        ("Hello", Message::Hello),
        ("Request", Message::Request(req.as_request())),
        ("Error", Message::Error(err)),
    ] {
        println!("{name}: body   {}", hex(&encode_body_vec(&m)));
        println!("{name}: frame  {}", hex(&encode_vec(&m)));
    }
}
