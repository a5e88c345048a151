//go:build !race

package trainer_test

const raceBuild = false
