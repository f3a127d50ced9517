pub use phr_engine::*;
