//! COBS (Consistent Overhead Byte Stuffing) with the frame CRC, written
//! without any panic path: every buffer access is checked (`get`/`get_mut`),
//! so that the firmware links with a panic handler that is defined nowhere
//! (boards/qemu-stream, feature `panic-check`). Tested bit-exact against the
//! `cobs` crate (proto/tests/frames.rs).
//!
//! COBS: the data is cut at every zero byte and into runs of at most 254
//! non-zero bytes; each block is written as a code byte (1 + its length)
//! followed by its bytes; a zero follows every block whose code is not 0xFF,
//! except after the last. Encoded data contains no zero.

use postcard::ser_flavors::Flavor;

use crate::{FrameError, CRC};

/// A postcard flavor writing `COBS(body ‖ CRC-32 LE) ‖ 0x00` into a slice;
/// its output is the frame length.
pub(crate) struct FrameWriter<'b> {
    buf: &'b mut [u8],
    pos: usize,
    code_at: usize,
    digest: crc::Digest<'static, u32>,
}

impl<'b> FrameWriter<'b> {
    pub(crate) fn new(buf: &'b mut [u8]) -> Result<Self, FrameError> {
        if buf.is_empty() {
            return Err(FrameError::BufferTooSmall);
        }
        Ok(FrameWriter {
            buf,
            pos: 1,
            code_at: 0,
            digest: CRC.digest(),
        })
    }

    fn put(&mut self, b: u8) -> postcard::Result<()> {
        *self
            .buf
            .get_mut(self.pos)
            .ok_or(postcard::Error::SerializeBufferFull)? = b;
        self.pos += 1;
        Ok(())
    }

    /// Ends the current block: writes its code byte, reserves the next one.
    fn close(&mut self) -> postcard::Result<()> {
        let code = (self.pos - self.code_at) as u8;
        *self
            .buf
            .get_mut(self.code_at)
            .ok_or(postcard::Error::SerializeBufferFull)? = code;
        self.code_at = self.pos;
        self.put(0)
    }

    fn stuff(&mut self, b: u8) -> postcard::Result<()> {
        if b == 0 {
            return self.close();
        }
        self.put(b)?;
        if self.pos - self.code_at == 0xFF {
            self.close()?;
        }
        Ok(())
    }
}

impl Flavor for FrameWriter<'_> {
    type Output = usize;

    fn try_push(&mut self, data: u8) -> postcard::Result<()> {
        self.digest.update(&[data]);
        self.stuff(data)
    }

    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        self.digest.update(data);
        data.iter().try_for_each(|&b| self.stuff(b))
    }

    fn finalize(mut self) -> postcard::Result<usize> {
        let crc = core::mem::replace(&mut self.digest, CRC.digest()).finalize();
        for b in crc.to_le_bytes() {
            self.stuff(b)?;
        }
        let code = (self.pos - self.code_at) as u8;
        *self
            .buf
            .get_mut(self.code_at)
            .ok_or(postcard::Error::SerializeBufferFull)? = code;
        self.put(crate::DELIMITER)?;
        Ok(self.pos)
    }
}

/// Undoes COBS in place (`buf` holds no zero byte: the bytes between two
/// delimiters); returns the decoded length.
pub(crate) fn unstuff(buf: &mut [u8]) -> Result<usize, FrameError> {
    let n = buf.len();
    let (mut r, mut w) = (0usize, 0usize);
    while r < n {
        let code = usize::from(*buf.get(r).ok_or(FrameError::Cobs)?);
        if code == 0 {
            return Err(FrameError::Cobs);
        }
        r += 1;
        let end = r + code - 1;
        if end > n {
            return Err(FrameError::Cobs);
        }
        while r < end {
            let b = *buf.get(r).ok_or(FrameError::Cobs)?;
            *buf.get_mut(w).ok_or(FrameError::Cobs)? = b;
            r += 1;
            w += 1;
        }
        if code != 0xFF && r < n {
            *buf.get_mut(w).ok_or(FrameError::Cobs)? = 0;
            w += 1;
        }
    }
    Ok(w)
}
