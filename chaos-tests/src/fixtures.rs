//! Registry objects the tests and the workload create, stated once.

use kauri_client::proto::{ContactFields, PostalAddress, PostalInfo, TldPolicy};

/// A TLD policy: 1-10 year periods, `price` minor units of `currency` to
/// create or renew a year, labels of 1-63 characters, IDNs allowed.
pub fn tld_policy(currency: &str, price: i64) -> TldPolicy {
    TldPolicy {
        min_period_years: 1,
        max_period_years: 10,
        create_price_minor_units: price,
        renew_price_minor_units: price,
        currency: currency.into(),
        min_label_length: 1,
        max_label_length: 63,
        allow_idn: true,
        idn: None,
    }
}

/// The fields of a contact in Auckland named `name`, reachable at `email`.
pub fn contact_fields(name: &str, email: &str) -> ContactFields {
    ContactFields {
        postal_info: vec![PostalInfo {
            r#type: "int".into(),
            name: name.into(),
            org: String::new(),
            address: Some(PostalAddress {
                street: vec!["1 Queen St".into()],
                city: "Auckland".into(),
                state_province: String::new(),
                postal_code: "1010".into(),
                country_code: "NZ".into(),
            }),
        }],
        voice: "+64.93001234".into(),
        fax: String::new(),
        email: email.into(),
        disclose_nothing: false,
    }
}
