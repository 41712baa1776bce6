// The console layer (netconsole) is being built; this keeps the library
// non-empty until its first source lands.
