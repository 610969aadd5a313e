//! A log in memory, for the unit tests.

use crate::Level;
use crate::writer::LogIo;

/// A log in memory that counts how much of it was read.
#[derive(Default, Clone)]
pub(crate) struct MemLog {
    pub(crate) bytes: Vec<u8>,
    pub(crate) read: u64,
    pub(crate) fail_appends: bool,
}

impl LogIo for MemLog {
    fn append(&mut self, data: &[u8]) -> Result<u64, String> {
        if self.fail_appends {
            return Err("disk full".into());
        }
        let at = self.bytes.len() as u64;
        self.bytes.extend_from_slice(data);
        Ok(at)
    }
    fn read(&mut self, offset: u64, len: u32) -> Result<Vec<u8>, String> {
        let start = (offset as usize).min(self.bytes.len());
        let end = (start + len as usize).min(self.bytes.len());
        self.read += (end - start) as u64;
        Ok(self.bytes[start..end].to_vec())
    }
    fn read_tail(&mut self, len: u32) -> Result<(u64, Vec<u8>), String> {
        let start = self.bytes.len().saturating_sub(len as usize) as u64;
        let bytes = self.read(start, len)?;
        Ok((start, bytes))
    }
    fn size(&mut self) -> Result<u64, String> {
        Ok(self.bytes.len() as u64)
    }
    fn sync(&mut self) -> Result<(), String> {
        Ok(())
    }
    fn diagnose(&mut self, _: Level, _: &str) {}
}
