//! Shapes of strings the API uses in many responses and parameters (addresses, 32-byte hashes,
//! wei amounts, decimal ids), as schema components of the OpenAPI document. Response fields
//! that hold them are `String`s annotated `#[schema(value_type = Address)]` and so on.

use std::borrow::Cow;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::RefOr;
use utoipa::{PartialSchema, ToSchema};

/// Pattern of an address as the API takes and gives it (given: EIP-55 checksummed).
pub const ADDRESS_PATTERN: &str = "^0x[0-9a-fA-F]{40}$";
/// Pattern of a 32-byte hash as the API gives it.
pub const HASH_PATTERN: &str = "^0x[0-9a-f]{64}$";
/// Pattern of a non-negative decimal integer of any size.
pub const DECIMAL_PATTERN: &str = "^[0-9]+$";

macro_rules! string_schema {
    ($(#[$doc:meta])* $name:ident, $pattern:expr, $description:literal) => {
        $(#[$doc])*
        pub struct $name;

        impl PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .pattern(Some($pattern))
                    .description(Some($description))
                    .into()
            }
        }

        impl ToSchema for $name {
            fn name() -> Cow<'static, str> {
                Cow::Borrowed(stringify!($name))
            }
        }
    };
}

string_schema!(
    /// Schema of a 20-byte address (responses give it EIP-55 checksummed).
    Address,
    ADDRESS_PATTERN,
    "0x-prefixed 20-byte address, EIP-55 checksummed"
);
string_schema!(
    /// Schema of a 32-byte hash, lowercase hex.
    Hash,
    HASH_PATTERN,
    "0x-prefixed 32-byte hash, lowercase hex"
);
string_schema!(
    /// Schema of an amount in wei.
    Wei,
    DECIMAL_PATTERN,
    "amount in wei, decimal"
);
string_schema!(
    /// Schema of a uint256 id (task ids) or WAD value written as a decimal string.
    Decimal,
    DECIMAL_PATTERN,
    "non-negative integer, decimal (uint256 ids and WAD fixed-point values: 1e18 = 1.0)"
);

/// Schema of an integer parameter that takes any non-negative integer, without the `format`
/// (int64) a Rust integer type would give it: one beyond the database's range (past 2^63) finds
/// nothing, or starts from the newest entry.
pub struct NonNegativeInteger;

impl PartialSchema for NonNegativeInteger {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::Integer)
            .minimum(Some(0))
            .description(Some("non-negative integer, of any size"))
            .into()
    }
}

impl ToSchema for NonNegativeInteger {}

/// A string schema whose values are `names` (the API's enumerations kept as `&str` constants,
/// e.g. [`crate::query::TASK_STATUSES`]).
pub fn one_of_names(names: &[&str], description: &str) -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(names.iter().copied()))
        .description(Some(description))
        .into()
}
