# boot.s: multiboot (v1) entry point of the Tandem "dirty" test guest.
#
# QEMU's -kernel loads this ELF32 image at 1 MiB and jumps to _start in
# 32-bit protected mode, paging off, with EAX = 0x2BADB002 and EBX = the
# physical address of the multiboot information structure.
#
# SPDX-License-Identifier: LGPL-2.1-or-later

        .set MB_MAGIC, 0x1BADB002
        .set MB_FLAGS, 0x00000003       # bit 0: page-align modules, bit 1: want mem_*
        .set MB_CHECKSUM, -(MB_MAGIC + MB_FLAGS)

        .section .multiboot, "a"
        .balign 4
        .long MB_MAGIC
        .long MB_FLAGS
        .long MB_CHECKSUM

        .section .bss
        .balign 16
stack_bottom:
        .skip 16384
stack_top:

        .section .text
        .globl _start
        .type _start, @function
_start:
        cli
        cld
        movl $stack_top, %esp
        pushl %ebx                      # multiboot info
        pushl %eax                      # bootloader magic
        call dirty_main
1:      cli
        hlt
        jmp 1b
        .size _start, . - _start

        .section .note.GNU-stack, "", @progbits
