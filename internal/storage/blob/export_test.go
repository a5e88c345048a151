package blob

// NewS3WithTransport exposes newS3 to the external tests.
var NewS3WithTransport = newS3
