//! A polling driver for the Arm CMSDK APB UART (the mps2 boards' UARTs;
//! QEMU's `cmsdk-apb-uart`), implementing `embedded_io::{Read, Write}`.
//!
//! Registers (Cortex-M System Design Kit TRM, and QEMU's
//! hw/char/cmsdk-apb-uart.c): DATA +0x0, STATE +0x4 (bit 0 TX full, bit 1 RX
//! full), CTRL +0x8 (bit 0 TX enable, bit 1 RX enable), BAUDDIV +0x10
//! (≥ 16). One byte of buffering in each direction: the peer must not send
//! faster than the firmware reads (QEMU holds bytes back until it does; on
//! hardware, keep the baud rate modest or add flow control).
#![allow(unsafe_code)]

use core::convert::Infallible;
use core::ptr::{read_volatile, write_volatile};

const DATA: usize = 0x0;
const STATE: usize = 0x4;
const CTRL: usize = 0x8;
const BAUDDIV: usize = 0x10;
const TX_FULL: u32 = 1 << 0;
const RX_FULL: u32 = 1 << 1;
const TX_EN: u32 = 1 << 0;
const RX_EN: u32 = 1 << 1;

/// UART0 of the mps2-an385/an386 images.
pub const UART0: usize = 0x4000_4000;

/// A CMSDK APB UART, polled.
pub struct CmsdkUart {
    base: usize,
}

impl CmsdkUart {
    /// Enables UART0 with `pclk_hz / baud` as the baud divider.
    pub fn uart0(pclk_hz: u32, baud: u32) -> Self {
        let u = CmsdkUart { base: UART0 };
        u.write_reg(BAUDDIV, (pclk_hz / baud.max(1)).max(16));
        u.write_reg(CTRL, TX_EN | RX_EN);
        u
    }

    fn read_reg(&self, off: usize) -> u32 {
        // SAFETY: `base` is UART0 of the mps2 memory map and `off` one of its
        // 32-bit registers; volatile reads have no other effect than the
        // device's (reading DATA pops the received byte).
        unsafe { read_volatile((self.base + off) as *const u32) }
    }

    fn write_reg(&self, off: usize, v: u32) {
        // SAFETY: as in `read_reg`: a register of the UART's MMIO block.
        unsafe { write_volatile((self.base + off) as *mut u32, v) }
    }
}

impl embedded_io::ErrorType for CmsdkUart {
    type Error = Infallible;
}

impl embedded_io::Read for CmsdkUart {
    /// Blocks until at least one byte has arrived, then returns what is there.
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Infallible> {
        let mut n = 0;
        for slot in buf.iter_mut() {
            if n > 0 && self.read_reg(STATE) & RX_FULL == 0 {
                break;
            }
            while self.read_reg(STATE) & RX_FULL == 0 {}
            *slot = self.read_reg(DATA) as u8;
            n += 1;
        }
        Ok(n)
    }
}

impl embedded_io::Write for CmsdkUart {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Infallible> {
        for &b in buf {
            while self.read_reg(STATE) & TX_FULL != 0 {}
            self.write_reg(DATA, u32::from(b));
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> Result<(), Infallible> {
        while self.read_reg(STATE) & TX_FULL != 0 {}
        Ok(())
    }
}
