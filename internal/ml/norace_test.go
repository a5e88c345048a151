//go:build !race

package ml

const raceBuild = false
