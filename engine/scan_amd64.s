//go:build amd64 && !purego

#include "textflag.h"

// One comma position: b[f+k] = i + (index of the lowest set bit of AX),
// then that bit is cleared. When AX has no bit left the position written
// is garbage, in a slot past the commas of the block (see scanBlocks).
#define POS(k) \
	BSFL AX, R9 \
	ADDL CX, R9 \
	MOVL R9, (4*k)(DI)(BX*4) \
	LEAL -1(AX), R9 \
	ANDL R9, AX

// func scanBlocks(line []byte, b *[maxFields]int32, want int) (f, i int)
TEXT ·scanBlocks(SB), NOSPLIT, $0-56
	MOVQ line_base+0(FP), SI
	MOVQ line_len+8(FP), DX
	MOVQ b+24(FP), DI
	MOVQ want+32(FP), R10
	XORQ BX, BX // f
	XORQ CX, CX // i
	MOVQ $0x2c2c2c2c2c2c2c2c, AX
	MOVQ AX, X0
	PUNPCKLQDQ X0, X0 // sixteen commas
	MOVQ $0x2222222222222222, AX
	MOVQ AX, X2
	PUNPCKLQDQ X2, X2 // sixteen double quotes
	SUBQ $16, DX      // the last i at which a whole block starts
	JLT  done

loop:
	CMPQ CX, DX
	JGT  done
	MOVOU   (SI)(CX*1), X1
	MOVOU   X1, X3
	PCMPEQB X2, X3
	PMOVMSKB X3, AX // one bit per double quote
	TESTL   AX, AX
	JNZ     done    // scanWords reads this block byte by byte
	PCMPEQB X0, X1
	PMOVMSKB X1, AX // one bit per comma of line[i:i+16]
	TESTL   AX, AX
	JZ      next
	POPCNTL AX, R8
	POS(1)
	POS(2)
	POS(3)
	POS(4)
	POS(5)
	POS(6)
	POS(7)
	POS(8)
	CMPL R8, $8
	JLE  counted
	POS(9)
	POS(10)
	POS(11)
	POS(12)
	POS(13)
	POS(14)
	POS(15)
	POS(16)

counted:
	ADDQ R8, BX
	CMPQ BX, R10
	JGE  found

next:
	ADDQ $16, CX
	JMP  loop

found:
	MOVQ R10, f+40(FP)
	MOVQ CX, i+48(FP)
	RET

done:
	MOVQ BX, f+40(FP)
	MOVQ CX, i+48(FP)
	RET

// func storeNums(nums []used, b *[maxFields]int32, nf int, line []byte, r int, slow []int32) int
//
// store's loop (see storeGo, whose every test it passes). A used is 16
// bytes: field int32, slot int32, vals *[batchRows]float64.
TEXT ·storeNums(SB), NOSPLIT, $0-104
	MOVQ nums_base+0(FP), SI
	MOVQ nums_len+8(FP), CX
	SHLQ $4, CX
	ADDQ SI, CX // the end of nums
	MOVQ b+24(FP), DI
	MOVQ line_base+40(FP), R9
	MOVQ r+64(FP), R11
	ANDQ $255, R11
	SHLQ $3, R11 // the offset of row r in a batch column's values
	MOVQ slow_base+72(FP), R12
	XORQ R13, R13 // k

next:
	CMPQ SI, CX
	JAE  done
	MOVLQSX 0(SI), DX // the field
	CMPQ DX, nf+32(FP)
	JGE  done
	MOVLQSX 0(DI)(DX*4), BX
	INCQ    BX // start
	MOVLQSX 4(DI)(DX*4), R8 // end
	MOVQ    R8, AX
	SUBQ    BX, AX
	CMPQ    AX, $1
	JNE     wide

	// Most cells are one digit.
	CMPQ    BX, line_len+48(FP)
	JAE     slowcell
	MOVBQZX 0(R9)(BX*1), AX
	SUBQ    $48, AX
	CMPQ    AX, $9
	JA      slowcell
	CVTSQ2SD AX, X0
	MOVQ    8(SI), DX
	MOVSD   X0, 0(DX)(R11*1)
	ADDQ    $16, SI
	JMP     next

wide:
	// 2 to 18 digits: no overflow.
	LEAQ -2(AX), R10
	CMPQ R10, $17
	JAE  slowcell
	TESTQ BX, BX
	JLT  slowcell
	CMPQ R8, line_len+48(FP)
	JA   slowcell
	XORQ AX, AX

digit:
	MOVBQZX 0(R9)(BX*1), DX
	SUBQ    $48, DX
	CMPQ    DX, $9
	JA      slowcell
	IMULQ   $10, AX
	ADDQ    DX, AX
	INCQ    BX
	CMPQ    BX, R8
	JLT     digit
	CVTSQ2SD AX, X0
	MOVQ    8(SI), DX
	MOVSD   X0, 0(DX)(R11*1)
	ADDQ    $16, SI
	JMP     next

slowcell:
	MOVQ SI, AX
	SUBQ nums_base+0(FP), AX
	SHRQ $4, AX
	MOVL AX, 0(R12)(R13*4)
	INCQ R13
	ADDQ $16, SI
	JMP  next

done:
	MOVQ R13, ret+96(FP)
	RET

// The dword offsets 0 to 15 of a block's bytes, for scanCompress.
DATA offsets<>+0(SB)/8, $0x0000000100000000
DATA offsets<>+8(SB)/8, $0x0000000300000002
DATA offsets<>+16(SB)/8, $0x0000000500000004
DATA offsets<>+24(SB)/8, $0x0000000700000006
DATA offsets<>+32(SB)/8, $0x0000000900000008
DATA offsets<>+40(SB)/8, $0x0000000b0000000a
DATA offsets<>+48(SB)/8, $0x0000000d0000000c
DATA offsets<>+56(SB)/8, $0x0000000f0000000e
GLOBL offsets<>(SB), RODATA|NOPTR, $64

// func scanCompress(line []byte, b *[maxFields]int32, want int) (f, i int)
//
// scanBlocks with AVX-512: the offsets of a block's commas are packed by
// VPCOMPRESSD and stored sixteen at once, whatever their number.
TEXT ·scanCompress(SB), NOSPLIT, $0-56
	MOVQ line_base+0(FP), SI
	MOVQ line_len+8(FP), DX
	MOVQ b+24(FP), DI
	MOVQ want+32(FP), R10
	XORQ BX, BX // f
	XORQ CX, CX // i
	MOVL $0x2c, AX
	VPBROADCASTB AX, X0 // sixteen commas
	MOVL $0x22, AX
	VPBROADCASTB AX, X2 // sixteen double quotes
	VMOVDQU32 offsets<>(SB), Z3
	SUBQ $16, DX // the last i at which a whole block starts
	JLT  cdone

cloop:
	CMPQ CX, DX
	JGT  cdone
	VMOVDQU (SI)(CX*1), X1
	VPCMPEQB X2, X1, K2
	KORTESTW K2, K2
	JNZ      cdone // scanWords reads this block byte by byte
	VPCMPEQB X0, X1, K1
	KMOVW    K1, AX
	TESTL    AX, AX
	JZ       cnext
	VPBROADCASTD CX, Z4
	VPADDD       Z3, Z4, Z4 // i+0 ... i+15
	VPCOMPRESSD.Z Z4, K1, Z5
	VMOVDQU32    Z5, 4(DI)(BX*4) // b[f+1:f+17]
	POPCNTL      AX, R8
	ADDQ         R8, BX
	CMPQ         BX, R10
	JGE          cfound

cnext:
	ADDQ $16, CX
	JMP  cloop

cfound:
	VZEROUPPER
	MOVQ R10, f+40(FP)
	MOVQ CX, i+48(FP)
	RET

cdone:
	VZEROUPPER
	MOVQ BX, f+40(FP)
	MOVQ CX, i+48(FP)
	RET
