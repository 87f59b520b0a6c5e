//! Word pools. They deliberately include what breaks naive CSV and text handling: apostrophes,
//! double quotes, commas, ampersands, slashes and non-ASCII letters from several scripts.

pub(super) const COMPANY_STEMS: &[&str] = &[
    "Acme",
    "Globex",
    "Initech",
    "Umbrella",
    "Stark",
    "Wayne",
    "Hooli",
    "Vandelay",
    "Müller",
    "Škoda",
    "Zürich",
    "O'Brien",
    "Çelik",
    "Nørgaard",
    "São Paulo",
    "Łódź",
    "Ωmega",
    "東京",
    "Société",
    "Cyberdyne",
    "Tyrell",
    "Soylent",
    "Wonka",
    "Gringotts",
    "Oceanic",
    "Aperture",
    "Blue Sun",
    "Pied Piper",
    "Massive Dynamic",
    "Nakatomi",
    "Weyland",
    "Dunder Mifflin",
];

pub(super) const COMPANY_MIDDLES: &[&str] = &[
    "Industries",
    "Systems",
    "Logistics",
    "Trading",
    "Analytics",
    "Foods",
    "Energy",
    "Textil",
    "Médical",
    "Bau",
    "Robotics",
    "Capital",
    "Labs",
    "Consulting",
    "Outfitters",
    "Pharma",
];

pub(super) const COMPANY_SUFFIXES: &[&str] = &[
    "Inc.",
    "LLC",
    "GmbH",
    "Ltd.",
    "S.A.",
    "& Co.",
    "Holdings",
    "Group",
    "株式会社",
    "AG",
    "plc",
    "S.à r.l.",
    "Sp. z o.o.",
    "K.K.",
];

pub(super) const FIRST_NAMES: &[&str] = &[
    "Ana",
    "José",
    "Zoë",
    "Björn",
    "Chloé",
    "Søren",
    "Ömer",
    "Łukasz",
    "Aoife",
    "Nguyễn",
    "Mary-Jane",
    "D'Andre",
    "John",
    "Emily",
    "Wei",
    "Yuki",
    "Olu",
    "Priya",
    "Hiroshi",
    "Fatima",
    "Matthäus",
    "Siobhán",
    "Dmitri",
    "Ingrid",
    "Kwame",
    "Lucía",
    "Noah",
    "Olivia",
    "Raj",
    "Sven",
];

pub(super) const LAST_NAMES: &[&str] = &[
    "O'Brien",
    "Smith",
    "García",
    "Müller",
    "van der Berg",
    "Nakamura",
    "Żółć",
    "Østergaard",
    "Johnson",
    "Williams",
    "Brown",
    "Dubois",
    "Rossi",
    "Kowalski",
    "Papadopoulos",
    "Ivanova",
    "Kim",
    "Nguyen",
    "Silva",
    "Hernández",
    "Schröder",
    "Andersson",
    "MacDonald",
    "D'Amico",
    "田中",
    "Smith, Jr.",
    "\"Doc\" Brown",
    "Öztürk",
    "Lefèvre",
    "Ó Súilleabháin",
];

pub(super) const ACCOUNT_TYPES: &[&str] = &[
    "Prospect",
    "Customer - Direct",
    "Customer - Channel",
    "Channel Partner / Reseller",
    "Installation Partner",
    "Technology Partner",
    "Other",
];

pub(super) const INDUSTRIES: &[&str] = &[
    "Agriculture",
    "Apparel",
    "Banking",
    "Biotechnology",
    "Chemicals",
    "Communications",
    "Construction",
    "Consulting",
    "Education",
    "Electronics",
    "Energy",
    "Engineering",
    "Entertainment",
    "Environmental",
    "Finance",
    "Food & Beverage",
    "Government",
    "Healthcare",
    "Hospitality",
    "Insurance",
    "Machinery",
    "Manufacturing",
    "Media",
    "Not For Profit",
    "Other",
    "Recreation",
    "Retail",
    "Shipping",
    "Technology",
    "Telecommunications",
    "Transportation",
    "Utilities",
];

/// (city, country) pairs, so a city never lands in the wrong country.
pub(super) const PLACES: &[(&str, &str)] = &[
    ("San Francisco", "United States"),
    ("New York", "United States"),
    ("München", "Germany"),
    ("Köln", "Germany"),
    ("São Paulo", "Brazil"),
    ("Zürich", "Switzerland"),
    ("東京", "Japan"),
    ("Kraków", "Poland"),
    ("Montréal", "Canada"),
    ("Reykjavík", "Iceland"),
    ("Málaga", "Spain"),
    ("London", "United Kingdom"),
    ("Dublin", "Ireland"),
    ("Αθήνα", "Greece"),
    ("Sydney", "Australia"),
    ("Bengaluru", "India"),
];

pub(super) const STREETS: &[&str] = &[
    "Main St",
    "Hauptstraße",
    "Rue de l'Église",
    "Calle Mayor",
    "Market Street",
    "Königsallee",
    "Avenida Paulista",
    "Baker Street",
    "Nørrebrogade",
    "Ulica Długa",
];

pub(super) const TITLES: &[&str] = &[
    "CEO",
    "CFO",
    "VP, Sales",
    "Director of IT",
    "Head of \"Growth\"",
    "Procurement Manager",
    "Software Engineer",
    "Buyer",
    "Office Manager",
    "Chief Happiness Officer",
    "Geschäftsführer",
    "Responsable des achats",
];

pub(super) const PRODUCTS: &[&str] = &[
    "500 Widgets",
    "Enterprise License",
    "Support Renewal",
    "Pilot, Phase 2",
    "Über-Bundle",
    "Consulting Hours",
    "Hardware Refresh",
    "\"Platinum\" Upgrade",
    "Data Migration",
];

/// (stage, default probability %): Salesforce's default opportunity stages.
pub(super) const STAGES: &[(&str, u8)] = &[
    ("Prospecting", 10),
    ("Qualification", 10),
    ("Needs Analysis", 20),
    ("Value Proposition", 50),
    ("Id. Decision Makers", 60),
    ("Perception Analysis", 70),
    ("Proposal/Price Quote", 75),
    ("Negotiation/Review", 90),
    ("Closed Won", 100),
    ("Closed Lost", 0),
];

pub(super) const OPPORTUNITY_TYPES: &[&str] =
    &["New Customer", "Existing Customer - Upgrade", "Existing Customer - Replacement"];

pub(super) const LEAD_SOURCES: &[&str] = &["Web", "Phone Inquiry", "Partner Referral", "Purchased List", "Other"];

/// The first users are fixed so tests can name them; more are drawn from the name pools.
pub(super) const USERS: &[(&str, &str)] = &[
    ("Integration", "User"),
    ("Ada", "Lovelace"),
    ("José", "Álvarez"),
    ("Zoë", "O'Connor"),
    ("Grace", "Hopper"),
    ("Björn", "Sørensen"),
    ("Aiko", "Tanaka"),
    ("Chidi", "Anagonye"),
];

/// Strips what an email local part cannot carry, so `Zoë O'Brien` becomes `zo.obrien`.
pub(super) fn email_part(name: &str) -> String {
    let mut out: String = name.chars().filter(char::is_ascii_alphanumeric).map(|c| c.to_ascii_lowercase()).collect();
    if out.is_empty() {
        out.push('x');
    }
    out
}
