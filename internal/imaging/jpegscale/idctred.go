package jpegscale

// Reduced-size inverse DCTs: an 8x8 block of dequantized coefficients (in
// natural order) becomes 4x4, 2x2 or 1x1 pixels, level shifted by +128 and
// clamped to [0, 255]. They follow the algorithm of the Independent JPEG
// Group's jidctred.c: the 8-point IDCT's outputs are averaged in pairs (4x4)
// or fours (2x2) analytically, which drops the coefficients that only carry
// the detail averaged away (row and column 4 for 4x4; the even ones but 0 for
// 2x2), and 1x1 is the DC term. Arithmetic is integer fixed point with
// constBits fractional bits in the multipliers and pass1Bits carried between
// the column and row passes, so the result is the same on every machine.

const (
	constBits = 13
	pass1Bits = 2
)

// Fixed-point constants, round(x * 2^constBits).
const (
	fix0_211164243 = 1730
	fix0_509795579 = 4176
	fix0_601344887 = 4926
	fix0_720959822 = 5906
	fix0_765366865 = 6270
	fix0_850430095 = 6967
	fix0_899976223 = 7373
	fix1_061594337 = 8697
	fix1_272758580 = 10426
	fix1_451774981 = 11893
	fix1_847759065 = 15137
	fix2_172734803 = 17799
	fix2_562915447 = 20995
	fix3_624509785 = 29692
)

// descale divides x by 2^n, rounding half up.
func descale(x int64, n uint) int64 { return (x + 1<<(n-1)) >> n }

// pixel level shifts an inverse DCT output and clamps it to a byte.
func pixel(x int64) byte {
	x += 128
	if x < 0 {
		return 0
	}
	if x > 255 {
		return 255
	}
	return byte(x)
}

// idct4x4 writes the 4x4 pixels of b to dst, whose rows are stride apart.
func idct4x4(b *block, dst []byte, stride int) {
	var ws [8 * 4]int64 // 4 rows of 8 columns
	for col := range 8 {
		if col == 4 {
			continue // the row pass does not use column 4
		}
		in := func(row int) int64 { return int64(b[8*row+col]) }
		if b[8*1+col] == 0 && b[8*2+col] == 0 && b[8*3+col] == 0 &&
			b[8*5+col] == 0 && b[8*6+col] == 0 && b[8*7+col] == 0 {
			dc := in(0) << pass1Bits
			ws[0*8+col], ws[1*8+col], ws[2*8+col], ws[3*8+col] = dc, dc, dc, dc
			continue
		}
		t10, t12, t0, t2 := idct4(in(0), in(1), in(2), in(3), in(5), in(6), in(7))
		const shift = constBits - pass1Bits + 1
		ws[0*8+col] = descale(t10+t2, shift)
		ws[3*8+col] = descale(t10-t2, shift)
		ws[1*8+col] = descale(t12+t0, shift)
		ws[2*8+col] = descale(t12-t0, shift)
	}
	for row := range 4 {
		w := ws[8*row : 8*row+8 : 8*row+8]
		out := dst[row*stride : row*stride+4 : row*stride+4]
		t10, t12, t0, t2 := idct4(w[0], w[1], w[2], w[3], w[5], w[6], w[7])
		const shift = constBits + pass1Bits + 3 + 1
		out[0] = pixel(descale(t10+t2, shift))
		out[3] = pixel(descale(t10-t2, shift))
		out[1] = pixel(descale(t12+t0, shift))
		out[2] = pixel(descale(t12-t0, shift))
	}
}

// idct4 is one 1-D pass of idct4x4 over the inputs x0..x7 (x4 unused): the
// even part's sum and difference and the odd part's two terms.
func idct4(x0, x1, x2, x3, x5, x6, x7 int64) (t10, t12, t0, t2 int64) {
	t0 = x0 << (constBits + 1)
	t2 = x2*fix1_847759065 - x6*fix0_765366865
	t10, t12 = t0+t2, t0-t2
	z1, z2, z3, z4 := x7, x5, x3, x1
	t0 = -z1*fix0_211164243 + z2*fix1_451774981 - z3*fix2_172734803 + z4*fix1_061594337
	t2 = -z1*fix0_509795579 - z2*fix0_601344887 + z3*fix0_899976223 + z4*fix2_562915447
	return t10, t12, t0, t2
}

// idct2x2 writes the 2x2 pixels of b to dst, whose rows are stride apart.
func idct2x2(b *block, dst []byte, stride int) {
	var ws [8 * 2]int64 // 2 rows of 8 columns
	for _, col := range [...]int{0, 1, 3, 5, 7} {
		in := func(row int) int64 { return int64(b[8*row+col]) }
		if b[8*1+col] == 0 && b[8*3+col] == 0 && b[8*5+col] == 0 && b[8*7+col] == 0 {
			dc := in(0) << pass1Bits
			ws[col], ws[8+col] = dc, dc
			continue
		}
		t10, t0 := idct2(in(0), in(1), in(3), in(5), in(7))
		const shift = constBits - pass1Bits + 2
		ws[col] = descale(t10+t0, shift)
		ws[8+col] = descale(t10-t0, shift)
	}
	for row := range 2 {
		w := ws[8*row : 8*row+8 : 8*row+8]
		out := dst[row*stride : row*stride+2 : row*stride+2]
		t10, t0 := idct2(w[0], w[1], w[3], w[5], w[7])
		const shift = constBits + pass1Bits + 3 + 2
		out[0] = pixel(descale(t10+t0, shift))
		out[1] = pixel(descale(t10-t0, shift))
	}
}

// idct2 is one 1-D pass of idct2x2 over the inputs x0, x1, x3, x5 and x7.
func idct2(x0, x1, x3, x5, x7 int64) (t10, t0 int64) {
	t10 = x0 << (constBits + 2)
	t0 = -x7*fix0_720959822 + x5*fix0_850430095 - x3*fix1_272758580 + x1*fix3_624509785
	return t10, t0
}

// idct1x1 writes the one pixel of b, its DC term, to dst.
func idct1x1(b *block, dst []byte) {
	dst[0] = pixel(descale(int64(b[0]), 3))
}
