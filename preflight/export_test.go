package preflight

// What the external tests (package preflight_test) use of the package's insides.
var NormFingerprint = normFingerprint
