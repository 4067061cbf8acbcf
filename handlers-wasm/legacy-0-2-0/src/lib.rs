//! Test fixture: a handler built with plain wit-bindgen against the frozen
//! copy of `tcmu:handler@0.2.0` in `wit/` (not the SDK, which follows the
//! current contract). The host must keep linking it: the contract only
//! adds within 0.2.x. It answers TEST UNIT READY, reads the first 512
//! bytes of its store with READ(6) at LBA 0, and refuses everything else.

#[cfg(target_family = "wasm")]
mod component {
    wit_bindgen::generate!({ path: "wit", world: "device-handler" });

    use exports::tcmu::handler::device::Guest;
    use std::cell::RefCell;
    use tcmu::handler::backing::Store;
    use tcmu::handler::types::{Command, Completion, DeviceIdentity, DeviceType, HandlerInfo, TaskManagementFunction};

    thread_local! {
        static STORE: RefCell<Option<Store>> = const { RefCell::new(None) };
    }

    fn check(key: u8, asc: u8) -> Completion {
        let mut sense = vec![0u8; 18];
        sense[0] = 0x70;
        sense[2] = key;
        sense[7] = 10;
        sense[12] = asc;
        Completion { status: 2, sense, data_in_len: 0, state_changed: false }
    }

    struct Legacy;

    impl Guest for Legacy {
        fn describe() -> HandlerInfo {
            HandlerInfo {
                name: "legacy-0-2-0".into(),
                device_type: DeviceType::Disk,
                description: "built against tcmu:handler@0.2.0".into(),
            }
        }
        fn open(_config: String, _identity: DeviceIdentity, store: Option<Store>) -> Result<(), String> {
            STORE.with(|s| *s.borrow_mut() = store);
            Ok(())
        }
        fn handle(command: Command) -> Completion {
            match command.cdb.first() {
                Some(0x00) => Completion { status: 0, sense: Vec::new(), data_in_len: 0, state_changed: false },
                Some(0x08) if command.cdb.len() >= 6 && command.cdb[1..4] == [0, 0, 0] && command.cdb[4] == 1 => STORE
                    .with(|s| match s.borrow().as_ref().map(|s| s.read_to_data_in(0, 512, 0)) {
                        Some(Ok(())) => {
                            Completion { status: 0, sense: Vec::new(), data_in_len: 512, state_changed: false }
                        }
                        _ => check(3, 0x11),
                    }),
                _ => check(5, 0x20),
            }
        }
        fn task_management(_tmf: TaskManagementFunction) {}
        fn resized(_new_size: u64) {}
        fn write_cache_changed(_enabled: bool) {}
        fn close() {}
    }

    export!(Legacy);
}
