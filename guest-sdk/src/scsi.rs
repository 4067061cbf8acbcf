//! SCSI CDB decoding and response builders (to be filled in).
