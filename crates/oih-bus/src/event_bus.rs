//! OIH event bus.
