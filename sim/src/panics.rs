//! Panics of the code under test as data: [`catch`] runs a closure, and a panic inside it comes
//! back as a [`Panic`] (message and `file:line`) instead of unwinding further.
//!
//! A process-wide panic hook, installed once, records the message and place of a panic into a
//! thread-local while a [`catch`] is active on that thread, and then prints nothing: the caller
//! reports the panic itself. Panics outside any [`catch`] go to the previous hook (the default
//! message on stderr). Thread-local, so `sim fuzz`'s worker threads never see each other's.

use serde::{Deserialize, Serialize};
use std::any::Any;
use std::cell::{Cell, RefCell};
use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Once;

/// A caught panic: what it said and where.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Panic {
    /// The panic message (`"<non-string payload>"` if it carried no text).
    pub message: String,
    /// `file:line` of the panic, as the compiler names the file.
    pub location: String,
}

impl fmt::Display for Panic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "panicked at {}: {}", self.location, self.message)
    }
}

thread_local! {
    /// How many [`catch`] calls are active on this thread (they nest).
    static CATCHING: Cell<u32> = const { Cell::new(0) };
    /// The latest panic the hook saw inside a [`catch`] on this thread.
    static LAST: RefCell<Option<Panic>> = const { RefCell::new(None) };
}

static INSTALL: Once = Once::new();

fn payload_text(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "<non-string payload>".to_string()
    }
}

fn install_hook() {
    INSTALL.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if CATCHING.with(Cell::get) > 0 {
                let location = info.location().map_or_else(
                    || "<unknown place>".to_string(),
                    |l| format!("{}:{}", l.file(), l.line()),
                );
                let message = payload_text(info.payload());
                LAST.with(|last| *last.borrow_mut() = Some(Panic { message, location }));
            } else {
                previous(info);
            }
        }));
    });
}

/// Runs `f`; a panic inside it is returned as `Err` (and not printed). `f` must not be used
/// again after a panic if it holds state the panic may have left half-updated.
pub fn catch<R>(f: impl FnOnce() -> R) -> Result<R, Panic> {
    install_hook();
    CATCHING.with(|c| c.set(c.get() + 1));
    let result = panic::catch_unwind(AssertUnwindSafe(f));
    CATCHING.with(|c| c.set(c.get() - 1));
    result.map_err(|payload| {
        LAST.with(|last| last.borrow_mut().take())
            .unwrap_or_else(|| Panic {
                message: payload_text(&*payload),
                location: "<unknown place>".to_string(),
            })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_data_with_its_place() {
        let line = line!() + 1;
        let p = catch(|| -> u32 { panic!("boom {}", 7) }).unwrap_err();
        assert_eq!(p.message, "boom 7");
        assert_eq!(p.location, format!("{}:{line}", file!()));
        assert_eq!(catch(|| 5), Ok(5));
    }

    #[test]
    fn nested_catches_each_get_their_own_panic() {
        let outer = catch(|| -> u8 {
            let inner = catch(|| -> u8 { panic!("inner") }).unwrap_err();
            assert_eq!(inner.message, "inner");
            panic!("outer after {}", inner.message);
        })
        .unwrap_err();
        assert_eq!(outer.message, "outer after inner");
    }
}
