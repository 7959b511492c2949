//! libphonenumber's rules split by country calling code: the `phonenumber` crate's own metadata,
//! written back into the form its `Database::from` reads (`loader::Metadata`), one postcard blob
//! per code. Used by `build.rs`, which embeds the blobs for `domain::phone_rules`, and by that
//! module's tests, which check that nothing is lost on the way.

use phonenumber::metadata::{loader, Database, Descriptor, Format, Metadata};

/// The rules of every calling code in `database`, ascending: each code's metadata in the order
/// `database` holds them (its main country first), as postcard bytes.
pub fn by_code(database: &Database) -> Vec<(u16, Vec<u8>)> {
    (1..=999u16)
        .filter_map(|code| {
            let entries = database.by_code(&code)?;
            let metadata: Vec<loader::Metadata> = entries.into_iter().map(to_loader).collect();
            let bytes = postcard::to_allocvec(&metadata).expect("metadata serialises");
            Some((code, bytes))
        })
        .collect()
}

/// `metadata` as `Database::from` reads it.
pub fn to_loader(metadata: &Metadata) -> loader::Metadata {
    let descriptors = metadata.descriptors();
    let text = |value: Option<&str>| value.map(str::to_owned);
    loader::Metadata {
        general: Some(descriptor(descriptors.general())),
        fixed_line: descriptors.fixed_line().map(descriptor),
        mobile: descriptors.mobile().map(descriptor),
        toll_free: descriptors.toll_free().map(descriptor),
        premium_rate: descriptors.premium_rate().map(descriptor),
        shared_cost: descriptors.shared_cost().map(descriptor),
        personal_number: descriptors.personal_number().map(descriptor),
        voip: descriptors.voip().map(descriptor),
        pager: descriptors.pager().map(descriptor),
        uan: descriptors.uan().map(descriptor),
        emergency: descriptors.emergency().map(descriptor),
        voicemail: descriptors.voicemail().map(descriptor),
        short_code: descriptors.short_code().map(descriptor),
        standard_rate: descriptors.standard_rate().map(descriptor),
        carrier: descriptors.carrier().map(descriptor),
        no_international: descriptors.no_international().map(descriptor),
        id: Some(metadata.id().to_owned()),
        country_code: Some(metadata.country_code()),
        international_prefix: metadata
            .international_prefix()
            .map(|r| r.as_str().to_owned()),
        preferred_international_prefix: text(metadata.preferred_international_prefix()),
        national_prefix: text(metadata.national_prefix()),
        preferred_extension_prefix: text(metadata.preferred_extension_prefix()),
        national_prefix_for_parsing: metadata
            .national_prefix_for_parsing()
            .map(|r| r.as_str().to_owned()),
        national_prefix_transform_rule: text(metadata.national_prefix_transform_rule()),
        formats: metadata.formats().iter().map(format).collect(),
        international_formats: metadata
            .international_formats()
            .iter()
            .map(format)
            .collect(),
        main_country_for_code: metadata.is_main_country_for_code(),
        leading_digits: metadata.leading_digits().map(|r| r.as_str().to_owned()),
        mobile_number_portable: metadata.is_mobile_number_portable(),
        defaults: Default::default(),
    }
}

fn descriptor(descriptor: &Descriptor) -> loader::Descriptor {
    loader::Descriptor {
        national_number: Some(descriptor.national_number().as_str().to_owned()),
        possible_length: descriptor.possible_length().to_vec(),
        possible_local_length: descriptor.possible_local_length().to_vec(),
        example: descriptor.example().map(str::to_owned),
    }
}

fn format(format: &Format) -> loader::Format {
    loader::Format {
        pattern: Some(format.pattern().as_str().to_owned()),
        format: Some(format.format().to_owned()),
        leading_digits: format
            .leading_digits()
            .iter()
            .map(|r| r.as_str().to_owned())
            .collect(),
        national_prefix_formatting_rule: format.national_prefix().map(str::to_owned),
        national_prefix_optional_when_formatting: format.is_national_prefix_optional(),
        domestic_carrier: format.domestic_carrier().map(str::to_owned),
    }
}
