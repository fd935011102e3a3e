//! How requests go on the wire, beyond what a step sends: `keep_alive` per journey, and the
//! protocol options read here so their checks sit together.

use toml::de::DeValue;

use super::{Compiler, Value};

impl<'s> Compiler<'s> {
    pub(super) fn boolean(&mut self, v: &Value<'_>, key: &str) -> Option<bool> {
        match v.get_ref() {
            DeValue::Boolean(b) => Some(*b),
            _ => {
                self.type_error(v, key, "true or false");
                None
            }
        }
    }
}
