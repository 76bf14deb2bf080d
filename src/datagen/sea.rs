//! A coarse graph of sea waypoints and the port cities attached to it, used
//! to route AIS shipping lanes around continents.
//!
//! Waypoints are hand-placed in open water: straits and canals (Dover,
//! Gibraltar, Suez, Bab-el-Mandeb, Hormuz, Malacca, Singapore, Panama, ...),
//! capes (Good Hope, Horn, Finisterre, Dondra Head, ...) and points off each
//! port's approach. Edges are straight lines in lon/lat that stay (roughly)
//! at sea. Port coordinates come from the GeoNames table; only the
//! waypoints are hand-made, and they are not cities.

use super::GenError;
use super::cities::{self, KM_PER_DEG_LAT, KM_PER_DEG_LON_EQ, approx_km};

/// Sea waypoints: (name, lat, lon).
#[rustfmt::skip]
const NODES: &[(&str, f64, f64)] = &[
    // North Sea, Channel, Irish Sea, Norway
    ("NSEA_S", 52.5, 3.3), ("DOVER", 51.0, 1.5), ("THAMES", 51.5, 1.6), ("CHANNEL_C", 50.2, -0.8),
    ("CHANNEL_W", 49.6, -5.0), ("USHANT", 48.5, -6.0), ("GERMAN_BIGHT", 54.0, 7.5), ("NSEA", 55.5, 4.0),
    ("NSEA_N", 58.3, 4.0), ("NORWAY_W", 60.5, 4.2), ("NORWAY_MID", 63.5, 6.0), ("NORWAY_NW", 68.0, 10.5),
    ("NORWAY_N", 71.5, 25.0), ("BARENTS", 69.8, 33.6), ("IRISH_SEA", 53.5, -5.3), ("ST_GEORGE", 51.8, -6.0),
    ("SCOT_E", 57.0, -1.0), ("OSLOFJORD", 59.0, 10.6),
    // Extra port approaches
    ("GRAN_CANARIA", 28.4, -15.1), ("BLACK_SE", 42.0, 40.5), ("LEVANT_E", 33.3, 34.6), ("VIZAG_APP", 17.3, 83.8),
    ("HOOGHLY", 21.2, 88.1), ("CHITTAGONG_APP", 21.8, 91.4), ("PENANG_APP", 5.4, 99.9), ("QINGDAO_APP", 35.8, 120.9),
    ("NIIGATA_APP", 38.5, 138.9), ("MAPUTO_APP", -25.8, 33.2), ("MONROVIA_APP", 6.0, -11.2), ("BIAFRA", 3.9, 9.15),
    ("CHES_BAY", 38.0, -76.2), ("RIO_PLATA", -35.0, -57.0),
    // Skagerrak, Kattegat, Baltic
    ("SKAGERRAK", 57.8, 8.0), ("SKAGEN", 58.0, 10.8), ("KATTEGAT", 57.0, 11.6), ("GREAT_BELT", 55.6, 10.95),
    ("KIEL_BAY", 54.6, 10.5), ("ORESUND", 55.7, 12.8), ("BALTIC_W", 55.0, 14.0), ("GDANSK_BAY", 54.6, 19.0),
    ("BALTIC_C", 57.0, 20.0), ("IRBE", 57.8, 21.8), ("RIGA_GULF", 57.5, 23.6), ("STOCKHOLM_APP", 59.2, 19.6),
    ("GULF_FIN_W", 59.5, 23.0), ("GULF_FIN_C", 59.8, 24.8), ("GULF_FIN_E", 60.0, 27.5),
    // Atlantic Europe and NW Africa
    ("BISCAY", 44.5, -4.0), ("FINISTERRE", 43.5, -10.0), ("PORTUGAL_N", 41.2, -9.3), ("PORTUGAL", 38.6, -9.8),
    ("ST_VINCENT", 36.8, -9.3), ("GIBRALTAR_W", 35.9, -6.5), ("GIBRALTAR", 35.95, -5.5), ("MOROCCO", 33.8, -8.5),
    ("CANARIES", 29.5, -12.0), ("SAHARA", 26.0, -15.5), ("BLANC", 21.0, -18.0), ("CAPE_VERDE", 14.5, -19.0),
    // Mediterranean
    ("ALBORAN", 36.0, -3.5), ("ALBORAN_E", 36.8, 0.0), ("VALENCIA_APP", 39.3, 0.0), ("BARCELONA_APP", 41.2, 2.5),
    ("LION", 42.8, 4.5), ("MED_W", 38.5, 5.0), ("ALGIERS_APP", 37.2, 3.0), ("LIGURIAN", 43.8, 8.8),
    ("SARDINIA_S", 38.3, 8.8), ("TYRRHENIAN", 40.0, 12.5), ("TYRRHENIAN_S", 38.8, 13.5), ("MESSINA", 38.25, 15.62),
    ("SICILY_CH", 37.5, 11.5), ("MALTA_E", 35.8, 15.0), ("IONIAN", 36.5, 18.5), ("OTRANTO", 40.0, 19.0),
    ("ADRIATIC_S", 41.8, 17.5), ("ADRIATIC_N", 43.8, 14.0), ("VENICE_APP", 45.2, 12.9), ("KYTHIRA_CH", 36.0, 23.6),
    ("SARONIC", 37.7, 23.5), ("CRETE_N", 35.9, 25.0), ("AEGEAN_C", 38.0, 25.3), ("AEGEAN_N", 39.5, 24.0),
    ("THERMAIC", 40.1, 22.9), ("IZMIR_APP", 38.6, 26.5), ("DARDANELLES", 39.95, 26.0), ("MARMARA", 40.75, 28.3),
    ("BOSPORUS_N", 41.35, 29.15), ("BLACK_W", 43.0, 30.5), ("ODESA_APP", 46.2, 31.0), ("BLACK_C", 42.5, 35.0),
    ("BLACK_E", 43.5, 37.0), ("KASOS", 35.35, 26.6), ("RHODES_S", 35.5, 28.5), ("CRETE_S", 34.5, 24.5),
    ("CYPRUS_N", 36.3, 34.0), ("LEVANT", 33.0, 33.0), ("ALEX_APP", 31.6, 29.9), ("PORT_SAID", 31.5, 32.35),
    // Suez, Red Sea, Arabian Sea, Gulf, India
    ("SUEZ_S", 29.8, 32.57), ("GULF_SUEZ", 28.2, 33.3), ("RED_N", 26.0, 35.5), ("RED_C", 21.0, 38.5),
    ("RED_S", 15.5, 41.5), ("BAB", 12.6, 43.35), ("ADEN_G", 12.3, 45.5), ("GULF_ADEN_E", 13.0, 50.0),
    ("GUARDAFUI", 12.0, 52.3), ("ARABIAN_W", 15.0, 56.0), ("ARABIAN_C", 16.0, 62.0), ("RAS_AL_HADD", 22.8, 60.3),
    ("GULF_OMAN", 24.8, 58.0), ("HORMUZ", 26.4, 56.6), ("PG_E", 26.0, 54.5), ("PG_C", 27.0, 51.5),
    ("PG_N", 29.0, 49.5), ("KARACHI_APP", 24.5, 66.6), ("INDIA_W", 18.5, 71.5), ("INDIA_SW", 9.5, 75.5),
    ("COLOMBO_APP", 6.5, 79.3), ("DONDRA", 5.4, 80.6), ("BENGAL_W", 13.0, 81.0), ("BENGAL_C", 16.0, 86.0),
    ("BENGAL_N", 20.5, 89.5), ("ANDAMAN_N", 15.5, 96.5),
    // Malacca, South China Sea, East Asia
    ("MALACCA_N", 6.0, 97.5), ("MALACCA_C", 3.0, 100.6), ("SINGAPORE_W", 1.2, 103.5), ("SINGAPORE_E", 1.22, 104.1),
    ("SCS_S", 4.0, 106.5), ("VUNG_TAU", 10.0, 107.5), ("SCS_W", 12.0, 110.5), ("TONKIN", 19.5, 107.5),
    ("SCS_N", 18.5, 113.0), ("SCS_C", 14.0, 116.0), ("PEARL", 22.0, 114.2), ("TAIWAN_SW", 22.3, 119.8),
    ("TAIWAN_STR", 24.6, 119.8), ("ECS_W", 29.8, 122.9), ("YANGTZE", 31.0, 123.0), ("ECS_C", 30.0, 125.5),
    ("YELLOW_C", 36.0, 123.5), ("YELLOW_E", 37.0, 125.5), ("BOHAI_STRAIT", 38.5, 121.0), ("BOHAI", 38.8, 118.8),
    ("KOREA_SW", 33.8, 125.3), ("KOREA_S", 33.9, 127.5), ("KOREA_STR", 34.9, 129.1), ("GENKAI", 33.9, 130.0),
    ("JAPAN_SEA_S", 36.5, 131.0), ("JAPAN_SEA", 40.0, 135.0), ("VLADIVOSTOK_APP", 42.5, 132.0),
    ("KYUSHU_S", 30.8, 131.5), ("SHIKOKU_S", 32.5, 133.5), ("KII_CH", 33.8, 135.0), ("ISE", 34.2, 137.1),
    ("TOKYO_APP", 34.6, 139.9), ("JAPAN_E", 35.5, 142.5), ("LUZON_STR", 20.5, 120.9), ("MANILA_APP", 14.3, 120.3),
    // Pacific
    ("PAC_NW", 42.0, 160.0), ("PAC_N", 47.0, -170.0), ("PAC_NE", 44.0, -140.0), ("PAC_W", 20.0, 135.0),
    ("MICRONESIA", 8.0, 155.0), ("SOLOMON_E", -8.0, 163.5), ("CORAL", -15.0, 156.0), ("HAWAII", 20.5, -158.5),
    ("PAC_SW", -22.0, 176.0), ("PAC_E", 12.0, -105.0),
    // Indonesia, Indian Ocean, Australia, New Zealand
    ("KARIMATA", -2.0, 108.9), ("JAVA_SEA_W", -5.8, 107.0), ("JAVA_SEA_E", -6.7, 112.6), ("SUNDA", -6.1, 105.7),
    ("IND_E", -15.0, 103.0), ("IND_C", -10.0, 75.0), ("MADAGASCAR_S", -27.5, 46.5), ("MAURITIUS", -20.3, 57.2),
    ("PERTH_APP", -32.0, 115.3), ("LEEUWIN", -35.5, 114.8), ("BIGHT", -36.5, 130.0), ("GULF_SV", -35.2, 138.3),
    ("BASS_W", -39.2, 143.0), ("MELB_APP", -38.5, 144.6), ("BASS_E", -38.9, 148.3), ("GABO", -38.0, 150.5),
    ("SYDNEY_APP", -34.0, 151.6), ("BRISBANE_APP", -27.0, 153.6), ("NORTH_CAPE", -33.8, 173.5), ("HAURAKI", -36.3, 175.4),
    // Africa
    ("SIERRA", 7.5, -14.5), ("CAPE_PALMAS", 3.5, -8.0), ("ABIDJAN_APP", 4.8, -4.0), ("ACCRA_APP", 5.2, 0.0),
    ("GUINEA_G", 3.5, 2.0), ("LAGOS_APP", 6.2, 3.4), ("GABON", -1.0, 8.0), ("ANGOLA", -9.0, 12.5),
    ("NAMIBIA", -23.0, 13.5), ("CAPE", -34.8, 18.2), ("AGULHAS", -35.5, 20.5), ("PE", -34.3, 26.0),
    ("DURBAN_APP", -30.0, 31.3), ("MOZ_CH_S", -25.0, 36.5), ("MOZ_CH", -17.0, 41.0), ("DAR", -6.5, 40.0),
    ("MOMBASA", -4.2, 40.0), ("SOMALIA_S", 2.0, 46.5), ("SOMALIA_E", 8.0, 51.5), ("SOUTH_ATL", -25.0, -10.0),
    // North Atlantic and North America
    ("ATL_NE", 48.0, -12.0), ("ATL_N", 45.0, -35.0), ("ATL_NW", 40.0, -60.0), ("ATL_MID", 28.0, -45.0),
    ("BERMUDA", 32.0, -65.0), ("ATL_W", 26.5, -71.0), ("NY_APP", 40.3, -73.6), ("NANTUCKET_S", 40.8, -69.8),
    ("CAPE_COD_E", 42.0, -69.6), ("BOSTON_APP", 42.3, -70.6), ("HALIFAX_APP", 44.2, -63.3), ("CHESAPEAKE", 36.95, -75.8),
    ("HATTERAS", 35.0, -74.8), ("CHARLESTON_APP", 32.5, -79.5), ("JAX_APP", 30.3, -81.0), ("FLORIDA_E", 27.0, -79.8),
    ("MIAMI_APP", 25.7, -79.9), ("FLORIDA_STR", 24.0, -80.8), ("HAVANA_APP", 23.4, -82.4), ("GULF_MEX_E", 24.5, -84.0),
    ("TAMPA_APP", 27.5, -83.0), ("NOLA_APP", 28.8, -89.0), ("GULF_MEX_C", 25.5, -90.0), ("HOUSTON_APP", 29.0, -94.5),
    ("VERACRUZ_APP", 19.5, -95.8), ("YUCATAN", 21.7, -85.9),
    // Caribbean, Panama, Pacific Americas
    ("CARIB_W", 17.0, -82.0), ("CARIB_C", 14.5, -75.0), ("JAMAICA_S", 17.5, -76.8), ("CARTAGENA_APP", 10.6, -75.8),
    ("PANAMA_N", 9.6, -79.9), ("PANAMA_S", 8.6, -79.5), ("PANAMA_GULF", 7.0, -79.6), ("PAC_CR", 6.5, -84.0),
    ("PAC_CA", 12.0, -90.0), ("TEHUANTEPEC", 15.5, -96.0), ("ACAPULCO_APP", 16.3, -100.0), ("MANZANILLO_APP", 18.5, -104.8),
    ("CABO", 22.3, -109.9), ("BAJA_SW", 24.0, -113.0), ("BAJA_W", 28.0, -116.0), ("LA_APP", 33.6, -118.3),
    ("CONCEPTION", 34.2, -121.0), ("SF_APP", 37.6, -123.2), ("MENDOCINO", 40.3, -125.0), ("OREGON", 43.5, -125.3),
    ("JDF", 48.4, -125.2), ("JDF_E", 48.3, -123.4), ("WINDWARD", 19.9, -73.8), ("MONA", 18.4, -67.6),
    ("SAN_JUAN_APP", 18.7, -66.1), ("SANTO_DOMINGO_APP", 18.2, -69.9), ("CARIB_E", 15.5, -66.0), ("ANTILLES", 14.25, -61.0),
    ("TRINIDAD_N", 11.8, -60.0),
    // South America
    ("GUIANA", 7.5, -54.0), ("FORTALEZA", -3.3, -38.5), ("NATAL_E", -5.0, -34.8), ("RECIFE", -8.0, -34.3),
    ("BRAZIL_E", -14.0, -38.0), ("ESPIRITO", -20.0, -39.5), ("CABO_FRIO", -23.3, -41.5), ("RIO_APP", -23.2, -43.1),
    ("SANTOS_APP", -24.4, -46.3), ("BRAZIL_S", -30.5, -48.5), ("PLATA", -35.8, -55.0), ("PATAGONIA_E", -45.0, -63.0),
    ("FALKLAND_W", -52.0, -64.0), ("HORN", -57.0, -66.5), ("PATAGONIA_W", -50.0, -76.5), ("CHILE_S", -42.0, -75.5),
    ("VALPARAISO", -33.0, -72.0), ("CHILE_N", -23.5, -70.8), ("CALLAO", -12.1, -77.4), ("ECUADOR", -1.5, -81.5),
    ("GUAYAQUIL_APP", -3.0, -80.5),
];

/// Undirected sea edges between waypoints.
#[rustfmt::skip]
const EDGES: &[(&str, &str)] = &[
    // Europe
    ("NSEA_S", "DOVER"), ("NSEA_S", "THAMES"), ("THAMES", "DOVER"), ("DOVER", "CHANNEL_C"),
    ("CHANNEL_C", "CHANNEL_W"), ("CHANNEL_W", "USHANT"), ("CHANNEL_W", "ST_GEORGE"), ("ST_GEORGE", "IRISH_SEA"),
    ("USHANT", "BISCAY"), ("USHANT", "FINISTERRE"), ("BISCAY", "FINISTERRE"), ("USHANT", "ATL_NE"),
    ("CHANNEL_W", "ATL_NE"), ("FINISTERRE", "ATL_NE"), ("NSEA_S", "NSEA"), ("NSEA_S", "GERMAN_BIGHT"),
    ("GERMAN_BIGHT", "NSEA"), ("NSEA", "NSEA_N"), ("NSEA", "SKAGERRAK"), ("SCOT_E", "NSEA"), ("SCOT_E", "NSEA_N"),
    ("OSLOFJORD", "SKAGERRAK"), ("OSLOFJORD", "SKAGEN"), ("NSEA_N", "SKAGERRAK"),
    ("NSEA_N", "NORWAY_W"), ("NORWAY_W", "NORWAY_MID"), ("NORWAY_MID", "NORWAY_NW"), ("NORWAY_NW", "NORWAY_N"),
    ("NORWAY_N", "BARENTS"), ("SKAGERRAK", "SKAGEN"), ("SKAGEN", "KATTEGAT"), ("KATTEGAT", "ORESUND"),
    ("KATTEGAT", "GREAT_BELT"), ("GREAT_BELT", "KIEL_BAY"), ("KIEL_BAY", "BALTIC_W"), ("ORESUND", "BALTIC_W"),
    ("BALTIC_W", "GDANSK_BAY"), ("BALTIC_W", "BALTIC_C"), ("GDANSK_BAY", "BALTIC_C"), ("BALTIC_C", "IRBE"),
    ("IRBE", "RIGA_GULF"), ("BALTIC_C", "STOCKHOLM_APP"), ("BALTIC_C", "GULF_FIN_W"), ("STOCKHOLM_APP", "GULF_FIN_W"),
    ("GULF_FIN_W", "GULF_FIN_C"), ("GULF_FIN_C", "GULF_FIN_E"),
    // Iberia and Africa
    ("FINISTERRE", "PORTUGAL_N"), ("PORTUGAL_N", "PORTUGAL"), ("PORTUGAL", "ST_VINCENT"), ("ST_VINCENT", "GIBRALTAR_W"),
    ("GIBRALTAR_W", "GIBRALTAR"), ("GIBRALTAR_W", "MOROCCO"), ("ST_VINCENT", "MOROCCO"), ("MOROCCO", "CANARIES"),
    ("PORTUGAL", "ATL_MID"), ("CANARIES", "SAHARA"), ("SAHARA", "BLANC"), ("BLANC", "CAPE_VERDE"),
    ("CANARIES", "ATL_MID"), ("CAPE_VERDE", "SIERRA"), ("CAPE_VERDE", "NATAL_E"), ("SIERRA", "CAPE_PALMAS"),
    ("CAPE_PALMAS", "ABIDJAN_APP"), ("ABIDJAN_APP", "ACCRA_APP"), ("ACCRA_APP", "GUINEA_G"), ("GUINEA_G", "LAGOS_APP"),
    ("GUINEA_G", "GABON"), ("GABON", "ANGOLA"), ("ANGOLA", "NAMIBIA"), ("NAMIBIA", "CAPE"),
    ("CAPE", "AGULHAS"), ("AGULHAS", "PE"), ("PE", "DURBAN_APP"), ("DURBAN_APP", "MOZ_CH_S"),
    ("MOZ_CH_S", "MOZ_CH"), ("MOZ_CH", "DAR"), ("DAR", "MOMBASA"), ("MOMBASA", "SOMALIA_S"),
    ("SOMALIA_S", "SOMALIA_E"), ("SOMALIA_E", "GUARDAFUI"), ("CAPE", "SOUTH_ATL"), ("SOUTH_ATL", "RIO_APP"),
    ("AGULHAS", "MADAGASCAR_S"), ("DURBAN_APP", "MADAGASCAR_S"), ("MADAGASCAR_S", "MAURITIUS"), ("MAURITIUS", "IND_C"),
    ("MAURITIUS", "PERTH_APP"),
    // Mediterranean and Black Sea
    ("GIBRALTAR", "ALBORAN"), ("ALBORAN", "ALBORAN_E"), ("ALBORAN_E", "MED_W"), ("ALBORAN_E", "VALENCIA_APP"),
    ("ALBORAN_E", "ALGIERS_APP"), ("VALENCIA_APP", "MED_W"), ("VALENCIA_APP", "BARCELONA_APP"), ("BARCELONA_APP", "LION"),
    ("BARCELONA_APP", "MED_W"), ("LION", "LIGURIAN"), ("LION", "MED_W"), ("MED_W", "LIGURIAN"),
    ("MED_W", "ALGIERS_APP"), ("MED_W", "SARDINIA_S"), ("ALGIERS_APP", "SARDINIA_S"), ("SARDINIA_S", "SICILY_CH"),
    ("SARDINIA_S", "TYRRHENIAN"), ("LIGURIAN", "TYRRHENIAN"), ("TYRRHENIAN", "TYRRHENIAN_S"), ("TYRRHENIAN_S", "MESSINA"),
    ("TYRRHENIAN_S", "SICILY_CH"), ("MESSINA", "IONIAN"), ("SICILY_CH", "MALTA_E"), ("MALTA_E", "IONIAN"),
    ("MALTA_E", "CRETE_S"), ("IONIAN", "OTRANTO"), ("OTRANTO", "ADRIATIC_S"), ("ADRIATIC_S", "ADRIATIC_N"),
    ("ADRIATIC_N", "VENICE_APP"), ("IONIAN", "KYTHIRA_CH"), ("IONIAN", "CRETE_S"), ("KYTHIRA_CH", "SARONIC"),
    ("KYTHIRA_CH", "CRETE_N"), ("SARONIC", "AEGEAN_C"), ("CRETE_N", "AEGEAN_C"), ("CRETE_N", "KASOS"),
    ("KASOS", "RHODES_S"), ("CRETE_S", "ALEX_APP"), ("CRETE_S", "LEVANT"), ("CRETE_S", "PORT_SAID"),
    ("RHODES_S", "LEVANT"), ("RHODES_S", "PORT_SAID"), ("CYPRUS_N", "LEVANT"), ("AEGEAN_C", "AEGEAN_N"),
    ("AEGEAN_N", "THERMAIC"), ("AEGEAN_C", "IZMIR_APP"), ("AEGEAN_N", "DARDANELLES"), ("AEGEAN_C", "DARDANELLES"),
    ("DARDANELLES", "MARMARA"), ("MARMARA", "BOSPORUS_N"), ("BOSPORUS_N", "BLACK_W"), ("BLACK_W", "ODESA_APP"),
    ("BLACK_W", "BLACK_C"), ("BLACK_C", "BLACK_E"), ("LEVANT", "PORT_SAID"), ("LEVANT", "ALEX_APP"),
    ("ALEX_APP", "PORT_SAID"),
    // Suez to Asia
    ("PORT_SAID", "SUEZ_S"), ("SUEZ_S", "GULF_SUEZ"), ("GULF_SUEZ", "RED_N"), ("RED_N", "RED_C"),
    ("RED_C", "RED_S"), ("RED_S", "BAB"), ("BAB", "ADEN_G"), ("ADEN_G", "GULF_ADEN_E"),
    ("GULF_ADEN_E", "GUARDAFUI"), ("GULF_ADEN_E", "ARABIAN_W"), ("GUARDAFUI", "DONDRA"), ("GUARDAFUI", "SOMALIA_E"),
    ("ARABIAN_W", "ARABIAN_C"), ("ARABIAN_W", "RAS_AL_HADD"), ("ARABIAN_C", "RAS_AL_HADD"), ("RAS_AL_HADD", "GULF_OMAN"),
    ("GULF_OMAN", "HORMUZ"), ("HORMUZ", "PG_E"), ("PG_E", "PG_C"), ("PG_C", "PG_N"),
    ("ARABIAN_C", "KARACHI_APP"), ("RAS_AL_HADD", "KARACHI_APP"), ("ARABIAN_C", "INDIA_W"), ("KARACHI_APP", "INDIA_W"),
    ("INDIA_W", "INDIA_SW"), ("INDIA_SW", "COLOMBO_APP"), ("COLOMBO_APP", "DONDRA"), ("ARABIAN_C", "INDIA_SW"),
    ("DONDRA", "BENGAL_W"), ("BENGAL_W", "BENGAL_C"), ("BENGAL_C", "BENGAL_N"), ("BENGAL_C", "ANDAMAN_N"),
    ("DONDRA", "MALACCA_N"), ("ANDAMAN_N", "MALACCA_N"), ("MALACCA_N", "MALACCA_C"), ("MALACCA_C", "SINGAPORE_W"),
    ("SINGAPORE_W", "SINGAPORE_E"), ("DONDRA", "IND_C"), ("IND_C", "SUNDA"), ("IND_C", "IND_E"),
    ("IND_E", "SUNDA"), ("IND_E", "PERTH_APP"),
    // East Asia
    ("SINGAPORE_E", "SCS_S"), ("SINGAPORE_E", "KARIMATA"), ("SCS_S", "KARIMATA"), ("KARIMATA", "JAVA_SEA_W"),
    ("SUNDA", "JAVA_SEA_W"), ("JAVA_SEA_W", "JAVA_SEA_E"), ("SCS_S", "VUNG_TAU"), ("SCS_S", "SCS_W"),
    ("VUNG_TAU", "SCS_W"), ("SCS_W", "TONKIN"), ("SCS_W", "SCS_N"), ("SCS_W", "SCS_C"),
    ("SCS_S", "SCS_C"), ("SCS_C", "MANILA_APP"), ("SCS_C", "SCS_N"), ("SCS_N", "PEARL"),
    ("PEARL", "TAIWAN_SW"), ("SCS_N", "TAIWAN_SW"), ("SCS_N", "LUZON_STR"), ("TAIWAN_SW", "LUZON_STR"),
    ("TAIWAN_SW", "TAIWAN_STR"), ("TAIWAN_STR", "ECS_W"), ("TAIWAN_STR", "ECS_C"), ("ECS_W", "YANGTZE"),
    ("YANGTZE", "ECS_C"), ("ECS_W", "ECS_C"), ("YANGTZE", "YELLOW_C"), ("ECS_C", "YELLOW_C"),
    ("YELLOW_C", "BOHAI_STRAIT"), ("BOHAI_STRAIT", "BOHAI"), ("YELLOW_C", "YELLOW_E"), ("YELLOW_E", "KOREA_SW"),
    ("YELLOW_C", "KOREA_SW"), ("ECS_C", "KOREA_SW"), ("KOREA_SW", "KOREA_S"), ("KOREA_S", "KOREA_STR"),
    ("ECS_C", "KOREA_S"), ("KOREA_STR", "GENKAI"), ("KOREA_S", "GENKAI"), ("KOREA_STR", "JAPAN_SEA_S"),
    ("JAPAN_SEA_S", "JAPAN_SEA"), ("JAPAN_SEA", "VLADIVOSTOK_APP"), ("ECS_C", "KYUSHU_S"), ("KYUSHU_S", "SHIKOKU_S"),
    ("SHIKOKU_S", "KII_CH"), ("KII_CH", "ISE"), ("ISE", "TOKYO_APP"), ("TOKYO_APP", "JAPAN_E"),
    // Pacific
    ("JAPAN_E", "PAC_NW"), ("PAC_NW", "PAC_N"), ("PAC_N", "PAC_NE"), ("PAC_NE", "JDF"),
    ("PAC_NE", "OREGON"), ("PAC_NE", "SF_APP"), ("PAC_NE", "LA_APP"), ("LUZON_STR", "PAC_W"),
    ("PAC_W", "TOKYO_APP"), ("PAC_W", "HAWAII"), ("PAC_W", "MICRONESIA"), ("MICRONESIA", "SOLOMON_E"),
    ("SOLOMON_E", "CORAL"), ("CORAL", "BRISBANE_APP"), ("HAWAII", "LA_APP"), ("HAWAII", "SF_APP"),
    ("HAWAII", "PAC_E"), ("HAWAII", "PAC_SW"), ("PAC_SW", "NORTH_CAPE"), ("PAC_SW", "BRISBANE_APP"),
    ("JAPAN_E", "HAWAII"),
    // Australia and New Zealand
    ("PERTH_APP", "LEEUWIN"), ("LEEUWIN", "BIGHT"), ("BIGHT", "GULF_SV"), ("BIGHT", "BASS_W"),
    ("GULF_SV", "BASS_W"), ("BASS_W", "MELB_APP"), ("MELB_APP", "BASS_E"), ("BASS_W", "BASS_E"),
    ("BASS_E", "GABO"), ("GABO", "SYDNEY_APP"), ("SYDNEY_APP", "BRISBANE_APP"), ("SYDNEY_APP", "NORTH_CAPE"),
    ("NORTH_CAPE", "HAURAKI"), ("BRISBANE_APP", "NORTH_CAPE"),
    // Americas
    ("ATL_NE", "ATL_N"), ("ATL_N", "ATL_NW"), ("ATL_NE", "ATL_MID"), ("ATL_MID", "ANTILLES"),
    ("ATL_MID", "BERMUDA"), ("ATL_NW", "NY_APP"), ("ATL_NW", "NANTUCKET_S"), ("ATL_NW", "HALIFAX_APP"),
    ("ATL_N", "HALIFAX_APP"), ("NANTUCKET_S", "NY_APP"), ("NANTUCKET_S", "CAPE_COD_E"), ("CAPE_COD_E", "BOSTON_APP"),
    ("NY_APP", "CHESAPEAKE"), ("CHESAPEAKE", "HATTERAS"), ("HATTERAS", "CHARLESTON_APP"), ("HATTERAS", "BERMUDA"),
    ("HATTERAS", "ATL_W"), ("ATL_NW", "BERMUDA"), ("CHARLESTON_APP", "JAX_APP"), ("JAX_APP", "FLORIDA_E"),
    ("FLORIDA_E", "MIAMI_APP"), ("MIAMI_APP", "FLORIDA_STR"), ("FLORIDA_STR", "HAVANA_APP"), ("FLORIDA_STR", "GULF_MEX_E"),
    ("HAVANA_APP", "GULF_MEX_E"), ("GULF_MEX_E", "TAMPA_APP"), ("GULF_MEX_E", "GULF_MEX_C"), ("GULF_MEX_E", "YUCATAN"),
    ("TAMPA_APP", "NOLA_APP"), ("GULF_MEX_C", "NOLA_APP"), ("GULF_MEX_C", "HOUSTON_APP"), ("NOLA_APP", "HOUSTON_APP"),
    ("GULF_MEX_C", "VERACRUZ_APP"), ("GULF_MEX_C", "YUCATAN"), ("YUCATAN", "CARIB_W"), ("CARIB_W", "PANAMA_N"),
    ("CARIB_W", "CARIB_C"), ("CARIB_W", "JAMAICA_S"), ("JAMAICA_S", "CARIB_C"), ("JAMAICA_S", "WINDWARD"),
    ("CARIB_C", "PANAMA_N"), ("CARIB_C", "CARTAGENA_APP"), ("CARTAGENA_APP", "PANAMA_N"), ("CARIB_C", "CARIB_E"),
    ("CARIB_E", "SANTO_DOMINGO_APP"), ("CARIB_E", "MONA"), ("MONA", "SANTO_DOMINGO_APP"), ("MONA", "ATL_W"),
    ("MONA", "SAN_JUAN_APP"), ("SAN_JUAN_APP", "ATL_W"), ("WINDWARD", "ATL_W"), ("WINDWARD", "CARIB_C"),
    ("CARIB_E", "ANTILLES"), ("CARIB_E", "TRINIDAD_N"), ("ANTILLES", "TRINIDAD_N"), ("TRINIDAD_N", "GUIANA"),
    ("ANTILLES", "GUIANA"), ("GUIANA", "FORTALEZA"), ("FORTALEZA", "NATAL_E"), ("NATAL_E", "RECIFE"),
    ("RECIFE", "BRAZIL_E"), ("BRAZIL_E", "ESPIRITO"), ("ESPIRITO", "CABO_FRIO"), ("CABO_FRIO", "RIO_APP"),
    ("RIO_APP", "SANTOS_APP"), ("SANTOS_APP", "BRAZIL_S"), ("BRAZIL_S", "PLATA"), ("PLATA", "PATAGONIA_E"),
    ("PATAGONIA_E", "FALKLAND_W"), ("FALKLAND_W", "HORN"), ("HORN", "PATAGONIA_W"), ("PATAGONIA_W", "CHILE_S"),
    ("CHILE_S", "VALPARAISO"), ("VALPARAISO", "CHILE_N"), ("CHILE_N", "CALLAO"), ("CALLAO", "ECUADOR"),
    ("ECUADOR", "GUAYAQUIL_APP"), ("PANAMA_GULF", "ECUADOR"), ("PANAMA_N", "PANAMA_S"), ("PANAMA_S", "PANAMA_GULF"),
    ("PANAMA_GULF", "PAC_CR"), ("PAC_CR", "PAC_CA"), ("PAC_CA", "TEHUANTEPEC"), ("TEHUANTEPEC", "ACAPULCO_APP"),
    ("ACAPULCO_APP", "MANZANILLO_APP"), ("MANZANILLO_APP", "CABO"), ("CABO", "BAJA_SW"), ("BAJA_SW", "BAJA_W"),
    ("BAJA_W", "LA_APP"), ("LA_APP", "CONCEPTION"), ("CONCEPTION", "SF_APP"), ("SF_APP", "MENDOCINO"),
    ("MENDOCINO", "OREGON"), ("OREGON", "JDF"), ("JDF", "JDF_E"), ("PAC_CA", "PAC_E"),
    ("PAC_E", "MANZANILLO_APP"),
    // Extra port approaches
    ("GRAN_CANARIA", "CANARIES"), ("GRAN_CANARIA", "SAHARA"), ("BLACK_SE", "BLACK_E"), ("BLACK_SE", "BLACK_C"),
    ("LEVANT_E", "LEVANT"), ("LEVANT_E", "CYPRUS_N"), ("VIZAG_APP", "BENGAL_C"), ("VIZAG_APP", "BENGAL_W"),
    ("HOOGHLY", "BENGAL_N"), ("CHITTAGONG_APP", "BENGAL_N"), ("PENANG_APP", "MALACCA_N"), ("PENANG_APP", "MALACCA_C"),
    ("QINGDAO_APP", "YELLOW_C"), ("NIIGATA_APP", "JAPAN_SEA"), ("MAPUTO_APP", "MOZ_CH_S"), ("MAPUTO_APP", "DURBAN_APP"),
    ("MONROVIA_APP", "SIERRA"), ("MONROVIA_APP", "CAPE_PALMAS"), ("BIAFRA", "GABON"), ("CHES_BAY", "CHESAPEAKE"),
    ("RIO_PLATA", "PLATA"),
];

/// Port cities: (GeoNames name, country, approach waypoint, traffic boost).
/// The boost lifts the big container/oil hubs above what population alone
/// would give them.
#[rustfmt::skip]
const PORTS: &[(&str, &str, &str, f64)] = &[
    ("Rotterdam", "NL", "NSEA_S", 3.0), ("Amsterdam", "NL", "NSEA_S", 1.0), ("Antwerp", "BE", "DOVER", 2.5),
    ("Hamburg", "DE", "GERMAN_BIGHT", 2.5), ("Bremerhaven", "DE", "GERMAN_BIGHT", 1.5), ("Bremen", "DE", "GERMAN_BIGHT", 0.8),
    ("Le Havre", "FR", "CHANNEL_C", 1.5), ("London", "GB", "THAMES", 1.2), ("Southampton", "GB", "CHANNEL_C", 1.5),
    ("Dublin", "IE", "IRISH_SEA", 1.0), ("Liverpool", "GB", "IRISH_SEA", 1.2), ("Belfast", "GB", "IRISH_SEA", 1.0),
    ("Aberdeen", "GB", "SCOT_E", 1.0), ("Bergen", "NO", "NORWAY_W", 1.0), ("Stavanger", "NO", "NSEA_N", 1.0),
    ("Oslo", "NO", "OSLOFJORD", 1.0), ("Gothenburg", "SE", "KATTEGAT", 1.5), ("Copenhagen", "DK", "ORESUND", 1.0),
    ("Kiel", "DE", "KIEL_BAY", 1.0), ("Gdańsk", "PL", "GDANSK_BAY", 1.2), ("Stockholm", "SE", "STOCKHOLM_APP", 1.0),
    ("Helsinki", "FI", "GULF_FIN_C", 1.0), ("Tallinn", "EE", "GULF_FIN_C", 1.0), ("Saint Petersburg", "RU", "GULF_FIN_E", 1.5),
    ("Riga", "LV", "RIGA_GULF", 1.0), ("Murmansk", "RU", "BARENTS", 1.0), ("Brest", "FR", "USHANT", 0.8),
    ("Bilbao", "ES", "BISCAY", 1.0), ("Porto", "PT", "PORTUGAL_N", 1.0), ("Lisbon", "PT", "PORTUGAL", 1.2),
    ("Algeciras", "ES", "GIBRALTAR", 2.5), ("Tangier", "MA", "GIBRALTAR", 1.5), ("Casablanca", "MA", "MOROCCO", 1.2),
    ("Las Palmas de Gran Canaria", "ES", "GRAN_CANARIA", 1.0), ("Málaga", "ES", "ALBORAN", 1.0), ("Valencia", "ES", "VALENCIA_APP", 2.0),
    ("Barcelona", "ES", "BARCELONA_APP", 1.5), ("Marseille", "FR", "LION", 1.5), ("Genoa", "IT", "LIGURIAN", 1.5),
    ("Naples", "IT", "TYRRHENIAN", 1.0), ("Palermo", "IT", "TYRRHENIAN_S", 1.0), ("Tunis", "TN", "SICILY_CH", 1.0),
    ("Algiers", "DZ", "ALGIERS_APP", 1.0), ("Oran", "DZ", "ALBORAN_E", 1.0), ("Venice", "IT", "VENICE_APP", 1.0),
    ("Trieste", "IT", "VENICE_APP", 1.2), ("Rijeka", "HR", "ADRIATIC_N", 0.8), ("Split", "HR", "ADRIATIC_N", 0.8),
    ("Bari", "IT", "ADRIATIC_S", 1.0), ("Durrës", "AL", "ADRIATIC_S", 0.8), ("Piraeus", "GR", "SARONIC", 2.0),
    ("Thessaloníki", "GR", "THERMAIC", 1.0), ("İzmir", "TR", "IZMIR_APP", 1.0), ("Istanbul", "TR", "MARMARA", 2.0),
    ("Odesa", "UA", "ODESA_APP", 1.0), ("Constanţa", "RO", "BLACK_W", 1.2), ("Varna", "BG", "BLACK_W", 1.0),
    ("Novorossiysk", "RU", "BLACK_E", 1.2), ("Batumi", "GE", "BLACK_SE", 0.8), ("Samsun", "TR", "BLACK_C", 0.8),
    ("Mersin", "TR", "CYPRUS_N", 1.0), ("Haifa", "IL", "LEVANT_E", 1.0), ("Beirut", "LB", "LEVANT_E", 1.0),
    ("Alexandria", "EG", "ALEX_APP", 1.2), ("Port Said", "EG", "PORT_SAID", 2.0), ("Suez", "EG", "SUEZ_S", 1.0),
    ("Jeddah", "SA", "RED_C", 1.5), ("Port Sudan", "SD", "RED_C", 0.8), ("Aden", "YE", "ADEN_G", 1.0),
    ("Djibouti", "DJ", "BAB", 1.0), ("Dubai", "AE", "PG_E", 2.5), ("Abu Dhabi", "AE", "PG_E", 1.0),
    ("Doha", "QA", "PG_C", 1.0), ("Dammam", "SA", "PG_C", 1.0), ("Kuwait City", "KW", "PG_N", 1.0),
    ("Bandar Abbas", "IR", "HORMUZ", 1.2), ("Muscat", "OM", "GULF_OMAN", 1.0), ("Karachi", "PK", "KARACHI_APP", 1.2),
    ("Mumbai", "IN", "INDIA_W", 1.5), ("Kochi", "IN", "INDIA_SW", 1.0), ("Colombo", "LK", "COLOMBO_APP", 2.0),
    ("Chennai", "IN", "BENGAL_W", 1.2), ("Visakhapatnam", "IN", "VIZAG_APP", 1.0), ("Kolkata", "IN", "HOOGHLY", 1.0),
    ("Chattogram", "BD", "CHITTAGONG_APP", 1.0), ("Yangon", "MM", "ANDAMAN_N", 1.0), ("George Town", "MY", "PENANG_APP", 1.0),
    ("Klang", "MY", "MALACCA_C", 2.0), ("Singapore", "SG", "SINGAPORE_E", 3.0), ("Jakarta", "ID", "JAVA_SEA_W", 1.5),
    ("Surabaya", "ID", "JAVA_SEA_E", 1.2), ("Ho Chi Minh City", "VN", "VUNG_TAU", 1.5), ("Haiphong", "VN", "TONKIN", 1.2),
    ("Hong Kong", "HK", "PEARL", 2.5), ("Shenzhen", "CN", "PEARL", 2.5), ("Guangzhou", "CN", "PEARL", 2.0),
    ("Xiamen", "CN", "TAIWAN_STR", 1.5), ("Kaohsiung", "TW", "TAIWAN_SW", 1.5), ("Shanghai", "CN", "YANGTZE", 3.0),
    ("Ningbo", "CN", "ECS_W", 2.5), ("Qingdao", "CN", "QINGDAO_APP", 2.0), ("Tianjin", "CN", "BOHAI", 2.0),
    ("Dalian", "CN", "BOHAI_STRAIT", 1.5), ("Busan", "KR", "KOREA_STR", 2.5), ("Incheon", "KR", "YELLOW_E", 1.2),
    ("Kitakyushu", "JP", "GENKAI", 1.0), ("Fukuoka", "JP", "GENKAI", 1.0), ("Osaka", "JP", "KII_CH", 1.5),
    ("Kobe", "JP", "KII_CH", 1.5), ("Nagoya", "JP", "ISE", 1.5), ("Tokyo", "JP", "TOKYO_APP", 1.5),
    ("Yokohama", "JP", "TOKYO_APP", 1.5), ("Niigata", "JP", "NIIGATA_APP", 0.8), ("Vladivostok", "RU", "VLADIVOSTOK_APP", 1.0),
    ("Manila", "PH", "MANILA_APP", 1.5), ("Perth", "AU", "PERTH_APP", 1.0), ("Adelaide", "AU", "GULF_SV", 0.8),
    ("Melbourne", "AU", "MELB_APP", 1.2), ("Sydney", "AU", "SYDNEY_APP", 1.2), ("Brisbane", "AU", "BRISBANE_APP", 1.0),
    ("Auckland", "NZ", "HAURAKI", 1.0), ("Honolulu", "US", "HAWAII", 0.8), ("Port Louis", "MU", "MAURITIUS", 0.8),
    ("Durban", "ZA", "DURBAN_APP", 1.5), ("Cape Town", "ZA", "CAPE", 1.2), ("Gqeberha", "ZA", "PE", 0.8),
    ("Maputo", "MZ", "MAPUTO_APP", 0.8), ("Dar es Salaam", "TZ", "DAR", 1.0), ("Mombasa", "KE", "MOMBASA", 1.0),
    ("Mogadishu", "SO", "SOMALIA_S", 0.6), ("Luanda", "AO", "ANGOLA", 1.0), ("Walvis Bay", "NA", "NAMIBIA", 0.6),
    ("Lagos", "NG", "LAGOS_APP", 1.5), ("Accra", "GH", "ACCRA_APP", 1.0), ("Tema", "GH", "ACCRA_APP", 0.8),
    ("Abidjan", "CI", "ABIDJAN_APP", 1.2), ("Monrovia", "LR", "MONROVIA_APP", 0.6), ("Freetown", "SL", "SIERRA", 0.6),
    ("Conakry", "GN", "SIERRA", 0.6), ("Dakar", "SN", "CAPE_VERDE", 1.0), ("Douala", "CM", "BIAFRA", 0.8),
    ("New York City", "US", "NY_APP", 2.5), ("Boston", "US", "BOSTON_APP", 1.0), ("Halifax", "CA", "HALIFAX_APP", 1.0),
    ("Baltimore", "US", "CHES_BAY", 1.0), ("Norfolk", "US", "CHESAPEAKE", 1.2), ("Charleston", "US", "CHARLESTON_APP", 1.0),
    ("Savannah", "US", "CHARLESTON_APP", 1.2), ("Jacksonville", "US", "JAX_APP", 1.0), ("Miami", "US", "MIAMI_APP", 1.5),
    ("Tampa", "US", "TAMPA_APP", 1.0), ("New Orleans", "US", "NOLA_APP", 1.2), ("Houston", "US", "HOUSTON_APP", 2.0),
    ("Veracruz", "MX", "VERACRUZ_APP", 1.0), ("Havana", "CU", "HAVANA_APP", 1.0), ("Kingston", "JM", "JAMAICA_S", 1.0),
    ("Santo Domingo", "DO", "SANTO_DOMINGO_APP", 1.0), ("San Juan", "PR", "SAN_JUAN_APP", 1.0), ("Cartagena", "CO", "CARTAGENA_APP", 1.2),
    ("Barranquilla", "CO", "CARTAGENA_APP", 0.8), ("Colón", "PA", "PANAMA_N", 2.0), ("Panama City", "PA", "PANAMA_S", 1.5),
    ("Acapulco de Juárez", "MX", "ACAPULCO_APP", 0.6), ("Manzanillo", "MX", "MANZANILLO_APP", 1.2), ("Los Angeles", "US", "LA_APP", 2.0),
    ("Long Beach", "US", "LA_APP", 2.0), ("San Diego", "US", "LA_APP", 1.0), ("San Francisco", "US", "SF_APP", 1.2),
    ("Oakland", "US", "SF_APP", 1.5), ("Seattle", "US", "JDF_E", 1.5), ("Vancouver", "CA", "JDF_E", 1.5),
    ("Guayaquil", "EC", "GUAYAQUIL_APP", 1.0), ("Callao", "PE", "CALLAO", 1.5), ("Antofagasta", "CL", "CHILE_N", 0.8),
    ("Valparaíso", "CL", "VALPARAISO", 1.2), ("Buenos Aires", "AR", "RIO_PLATA", 1.5), ("Montevideo", "UY", "RIO_PLATA", 1.0),
    ("Santos", "BR", "SANTOS_APP", 2.0), ("Rio de Janeiro", "BR", "RIO_APP", 1.2), ("Vitória", "BR", "ESPIRITO", 0.8),
    ("Salvador", "BR", "BRAZIL_E", 1.0), ("Recife", "BR", "RECIFE", 1.0), ("Natal", "BR", "NATAL_E", 0.6),
    ("Fortaleza", "BR", "FORTALEZA", 0.8),
];

/// A resolved port: GeoNames position plus its approach waypoint.
#[derive(Debug, Clone)]
pub(crate) struct Port {
    pub name: &'static str,
    pub country: [u8; 2],
    pub lat: f64,
    pub lon: f64,
    pub attach: usize,
    /// Relative ship traffic: sqrt(population) times the hub boost.
    pub weight: f64,
    /// Relative local (fishing, tug, leisure) traffic: sqrt(population).
    pub local_weight: f64,
}

/// The sea graph with all-pairs shortest paths precomputed (Floyd–Warshall
/// over a couple of hundred waypoints: a few milliseconds, once per run).
pub(crate) struct SeaNet {
    pub ports: Vec<Port>,
    nodes: Vec<(f64, f64)>,
    dist: Vec<f64>,
    next: Vec<u16>,
}

/// A route as a polyline in (unwrapped lon, lat), with per-segment data for
/// cheap interpolation.
#[derive(Debug, Clone)]
pub(crate) struct Route {
    /// Points as (lon, lat); lon may leave [-180, 180) so that segments
    /// crossing the antimeridian interpolate the short way.
    pub pts: Vec<(f64, f64)>,
    /// Cumulative length in km at each point (`cum[0] == 0`).
    pub cum: Vec<f64>,
    /// Per segment: unit direction (east, north) in km space.
    pub dir: Vec<(f64, f64)>,
    /// Total length, km.
    pub len_km: f64,
}

impl Route {
    /// Builds the per-segment data for a polyline (lon/lat degrees).
    pub fn new(raw: &[(f64, f64)]) -> Self {
        let mut pts: Vec<(f64, f64)> = Vec::with_capacity(raw.len());
        for &(lon, lat) in raw {
            let lon = match pts.last() {
                Some(&(plon, _)) => plon + wrap_delta(lon - plon),
                None => lon,
            };
            // Drop zero-length steps so every segment has a direction.
            if pts
                .last()
                .is_some_and(|&(plon, plat)| (plon - lon).abs() < 1e-9 && (plat - lat).abs() < 1e-9)
            {
                continue;
            }
            pts.push((lon, lat));
        }
        let mut cum = Vec::with_capacity(pts.len());
        let mut dir = Vec::with_capacity(pts.len().saturating_sub(1));
        let mut total = 0.0;
        cum.push(0.0);
        for w in pts.windows(2) {
            let ((lon0, lat0), (lon1, lat1)) = (w[0], w[1]);
            let mid = (0.5 * (lat0 + lat1)).to_radians().cos();
            let ex = (lon1 - lon0) * KM_PER_DEG_LON_EQ * mid;
            let ny = (lat1 - lat0) * KM_PER_DEG_LAT;
            let len = (ex * ex + ny * ny).sqrt().max(1e-9);
            total += len;
            cum.push(total);
            dir.push((ex / len, ny / len));
        }
        Self {
            pts,
            cum,
            dir,
            len_km: total,
        }
    }

    /// Position at distance `s` km from the start: (lon, lat, segment).
    #[inline]
    pub fn at(&self, s: f64) -> (f64, f64, usize) {
        if self.pts.len() < 2 {
            let (lon, lat) = self.pts.first().copied().unwrap_or((0.0, 0.0));
            return (lon, lat, 0);
        }
        let s = s.clamp(0.0, self.len_km);
        // Index of the segment containing s.
        let k = (self.cum.partition_point(|&c| c <= s).saturating_sub(1)).min(self.dir.len() - 1);
        let seg = self.cum[k + 1] - self.cum[k];
        let f = if seg > 0.0 {
            (s - self.cum[k]) / seg
        } else {
            0.0
        };
        let (lon0, lat0) = self.pts[k];
        let (lon1, lat1) = self.pts[k + 1];
        (lon0 + f * (lon1 - lon0), lat0 + f * (lat1 - lat0), k)
    }
}

/// Shortest signed longitude difference, in (-180, 180].
#[inline]
fn wrap_delta(d: f64) -> f64 {
    let d = (d + 180.0).rem_euclid(360.0) - 180.0;
    if d == -180.0 { 180.0 } else { d }
}

impl SeaNet {
    /// Resolves the ports against the city table and precomputes paths.
    pub fn build() -> Result<Self, GenError> {
        let index = |name: &str| NODES.iter().position(|n| n.0 == name);
        let n = NODES.len();
        let nodes: Vec<(f64, f64)> = NODES.iter().map(|&(_, lat, lon)| (lat, lon)).collect();
        let mut dist = vec![f64::INFINITY; n * n];
        let mut next = vec![u16::MAX; n * n];
        for i in 0..n {
            dist[i * n + i] = 0.0;
            next[i * n + i] = i as u16;
        }
        for &(a, b) in EDGES {
            let (Some(i), Some(j)) = (index(a), index(b)) else {
                return Err(GenError::InvalidOptions(format!(
                    "sea edge {a}-{b} names an unknown waypoint"
                )));
            };
            let d = approx_km(nodes[i].0, nodes[i].1, nodes[j].0, nodes[j].1);
            dist[i * n + j] = d;
            dist[j * n + i] = d;
            next[i * n + j] = j as u16;
            next[j * n + i] = i as u16;
        }
        for k in 0..n {
            for i in 0..n {
                let dik = dist[i * n + k];
                if !dik.is_finite() {
                    continue;
                }
                for j in 0..n {
                    let d = dik + dist[k * n + j];
                    if d < dist[i * n + j] {
                        dist[i * n + j] = d;
                        next[i * n + j] = next[i * n + k];
                    }
                }
            }
        }

        let cities = cities::cities()?;
        let mut ports = Vec::with_capacity(PORTS.len());
        for &(name, cc, attach, boost) in PORTS {
            // The table is sorted by population, so the first match is the
            // main city of that name in that country.
            let Some(city) = cities
                .iter()
                .find(|c| c.name == name && c.country_str() == cc)
            else {
                continue;
            };
            let Some(attach) = index(attach) else {
                return Err(GenError::InvalidOptions(format!(
                    "port {name} uses unknown waypoint {attach}"
                )));
            };
            let local_weight = f64::from(city.population).sqrt();
            ports.push(Port {
                name,
                country: city.country,
                lat: city.lat,
                lon: city.lon,
                attach,
                weight: local_weight * boost,
                local_weight,
            });
        }
        if ports.len() < 2 {
            return Err(GenError::CityTable(
                "fewer than two port cities found".into(),
            ));
        }
        // Every port must reach every other one, or lanes would be cut.
        let first = ports[0].attach;
        if let Some(p) = ports
            .iter()
            .find(|p| !dist[first * n + p.attach].is_finite())
        {
            return Err(GenError::InvalidOptions(format!(
                "port {} is cut off from the sea graph",
                p.name
            )));
        }
        Ok(Self {
            ports,
            nodes,
            dist,
            next,
        })
    }

    /// Sea distance in km between two ports (via their approach waypoints).
    pub fn port_km(&self, a: usize, b: usize) -> f64 {
        let (pa, pb) = (&self.ports[a], &self.ports[b]);
        let n = self.nodes.len();
        let (na, nb) = (self.nodes[pa.attach], self.nodes[pb.attach]);
        approx_km(pa.lat, pa.lon, na.0, na.1)
            + self.dist[pa.attach * n + pb.attach]
            + approx_km(nb.0, nb.1, pb.lat, pb.lon)
    }

    /// The lane from port `a` to port `b`: port, approach waypoint, sea
    /// path, approach waypoint, port.
    pub fn route(&self, a: usize, b: usize) -> Route {
        let (pa, pb) = (&self.ports[a], &self.ports[b]);
        let n = self.nodes.len();
        let mut raw = vec![(pa.lon, pa.lat)];
        let mut i = pa.attach;
        let mut guard = 0;
        loop {
            raw.push((self.nodes[i].1, self.nodes[i].0));
            if i == pb.attach || guard > n {
                break;
            }
            let nx = self.next[i * n + pb.attach];
            if nx == u16::MAX {
                break;
            }
            i = usize::from(nx);
            guard += 1;
        }
        raw.push((pb.lon, pb.lat));
        Route::new(&raw)
    }

    /// Position of waypoint `node` as (lat, lon).
    pub fn node(&self, node: usize) -> (f64, f64) {
        self.nodes[node]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_ports_resolve_and_connect() {
        let net = SeaNet::build().unwrap();
        let missing: Vec<_> = PORTS
            .iter()
            .filter(|p| !net.ports.iter().any(|q| q.name == p.0))
            .map(|p| p.0)
            .collect();
        assert!(
            missing.is_empty(),
            "ports not in the city table: {missing:?}"
        );
        assert!(net.ports.len() >= 140, "{} ports", net.ports.len());
        // (SeaNet::build also checks that all ports are connected.)
        // Unique waypoint names.
        for (i, a) in NODES.iter().enumerate() {
            assert!(
                NODES[i + 1..].iter().all(|b| b.0 != a.0),
                "duplicate waypoint {}",
                a.0
            );
        }
        // Every port's approach waypoint is reasonably close to it.
        let far: Vec<_> = net
            .ports
            .iter()
            .map(|p| {
                let (lat, lon) = net.node(p.attach);
                (p.name, approx_km(p.lat, p.lon, lat, lon))
            })
            .filter(|&(_, d)| d > 250.0)
            .collect();
        assert!(far.is_empty(), "ports far from their waypoint: {far:?}");
    }

    #[test]
    fn routes_go_the_plausible_way() {
        let net = SeaNet::build().unwrap();
        let find = |name: &str| net.ports.iter().position(|p| p.name == name).unwrap();
        // Rotterdam to Singapore goes through Suez: about 15,500 km by sea.
        let d = net.port_km(find("Rotterdam"), find("Singapore"));
        assert!((13_000.0..19_000.0).contains(&d), "{d}");
        let r = net.route(find("Rotterdam"), find("Singapore"));
        assert!((r.len_km - d).abs() < 1.0);
        let (lon, lat, _) = r.at(r.len_km * 0.5);
        assert!(lat.is_finite() && lon.is_finite());
        // Across the Pacific the polyline stays continuous over the
        // antimeridian instead of going round the world.
        let r = net.route(find("Tokyo"), find("Seattle"));
        assert!(r.len_km < 12_000.0, "{}", r.len_km);
        assert_eq!(wrap_delta(190.0), -170.0);
        assert_eq!(wrap_delta(-180.0), 180.0);
    }
}
