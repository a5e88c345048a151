package onnxrt_test

import "os"

func writeFile(path string) error { return writeBytes(path, []byte("not a shared library")) }

func writeBytes(path string, b []byte) error { return os.WriteFile(path, b, 0o600) }
