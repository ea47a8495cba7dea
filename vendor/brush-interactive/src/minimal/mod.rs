mod input_backend;

pub use input_backend::MinimalInputBackend;
