//! Returning data-in.

use crate::sense::INTERNAL_TARGET_FAILURE;
use crate::{Command, Completion, LogLevel, Transfer, log};

/// Send `data` as the command's data-in, cut to the allocation length and
/// to the room the kernel gave (SPC: a short allocation length is not an
/// error, the initiator just gets the start of the data), and complete with
/// GOOD status and that many bytes. A failing transfer, which only a host
/// fault can cause, completes with HARDWARE ERROR: INTERNAL TARGET FAILURE.
pub fn respond(xfer: &mut dyn Transfer, cmd: &Command<'_>, data: &[u8], allocation_length: u32) -> Completion {
    let len = data.len().min(allocation_length as usize).min(cmd.data_in_len as usize);
    if len == 0 {
        return Completion::good();
    }
    match xfer.write_data_in(0, &data[..len]) {
        Ok(()) => Completion::good_with_data(len as u32),
        Err(e) => {
            log(LogLevel::Error, &format!("writing {len} bytes of data-in failed: {e}"));
            INTERNAL_TARGET_FAILURE.into()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::IoError;

    /// A data-in buffer of fixed room.
    struct DataIn(Vec<u8>);

    impl Transfer for DataIn {
        fn read_data_out(&mut self, _offset: u32, _len: u32) -> Result<Vec<u8>, IoError> {
            Err(IoError::OutOfRange)
        }
        fn write_data_in(&mut self, offset: u32, data: &[u8]) -> Result<(), IoError> {
            let at = offset as usize;
            let room = self.0.get_mut(at..at + data.len()).ok_or(IoError::OutOfRange)?;
            room.copy_from_slice(data);
            Ok(())
        }
    }

    fn command(data_in_len: u32) -> Command<'static> {
        Command { cdb: &[0x12, 0, 0, 0, 0xff, 0], data_out_len: 0, data_in_len }
    }

    #[test]
    fn cut_to_the_smallest_of_data_allocation_and_room() {
        let mut xfer = DataIn(vec![0; 8]);
        assert_eq!(respond(&mut xfer, &command(8), &[1, 2, 3, 4, 5, 6], 4), Completion::good_with_data(4));
        assert_eq!(xfer.0, [1, 2, 3, 4, 0, 0, 0, 0]);

        let mut xfer = DataIn(vec![0; 3]);
        assert_eq!(respond(&mut xfer, &command(3), &[9; 6], 100), Completion::good_with_data(3));
        assert_eq!(respond(&mut xfer, &command(3), &[7; 2], 100), Completion::good_with_data(2));
        assert_eq!(xfer.0, [7, 7, 9]);
    }

    #[test]
    fn zero_allocation_length_sends_nothing() {
        let mut xfer = DataIn(vec![]);
        assert_eq!(respond(&mut xfer, &command(0), &[1, 2], 0), Completion::good());
    }

    #[test]
    fn transfer_failure_is_a_target_failure() {
        let mut xfer = DataIn(vec![]);
        // The command claims room the transfer does not have.
        let done = respond(&mut xfer, &command(16), &[1; 8], 16);
        assert_eq!(done, Completion::check_condition(&INTERNAL_TARGET_FAILURE));
    }
}
