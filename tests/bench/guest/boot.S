/* The benchmark guest's entry: a multiboot header (QEMU loads the ELF with -kernel), our own GDT,
 * an IDT whose exception vectors halt and whose IRQ vectors (0x20-0x2f after the PIC remap) call
 * bg_irq(), a stack, then bg_main(). 32-bit protected mode, no paging. */
    .section .text
    .globl _start
    .align 4
multiboot_header:
    .long 0x1BADB002                /* magic */
    .long 0                         /* flags: nothing asked of the loader */
    .long -0x1BADB002               /* checksum */

_start:
    cli
    movl $0x90000, %esp             /* conventional memory, below the EBDA, above our image */
    lgdt gdt_descriptor
    ljmp $0x08, $reload_segments
reload_segments:
    movw $0x10, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %fs
    movw %ax, %gs
    movw %ax, %ss

    /* IDT: 0x00-0x1f halt, 0x20-0x2f the IRQ stub, the rest absent. */
    xorl %ecx, %ecx
fill_idt:
    movl $exception_stub, %eax
    cmpl $0x20, %ecx
    jb 1f
    movl $irq_stub, %eax
1:  leal idt(,%ecx,8), %edi
    movw %ax, (%edi)                /* offset 15:0 */
    movw $0x08, 2(%edi)             /* code selector */
    movw $0x8E00, 4(%edi)           /* present, ring 0, 32-bit interrupt gate */
    shrl $16, %eax
    movw %ax, 6(%edi)               /* offset 31:16 */
    incl %ecx
    cmpl $0x30, %ecx
    jb fill_idt
    lidt idt_descriptor

    call bg_main
halt_forever:
    cli
    hlt
    jmp halt_forever

exception_stub:
    cli
    hlt
    jmp exception_stub

irq_stub:
    pusha
    cld
    call bg_irq
    popa
    iret

    .globl bg_idle
/* Waits for the next interrupt with interrupts enabled; sti's one-instruction shadow makes
 * "sti; hlt" race-free. */
bg_idle:
    sti
    hlt
    cli
    ret

    .section .data
    .align 8
gdt:
    .quad 0
    .quad 0x00CF9A000000FFFF        /* 0x08: code, base 0, limit 4 GiB */
    .quad 0x00CF92000000FFFF        /* 0x10: data, base 0, limit 4 GiB */
gdt_descriptor:
    .word gdt_descriptor - gdt - 1
    .long gdt
    .align 8
idt:
    .fill 0x30, 8, 0
idt_descriptor:
    .word 0x30 * 8 - 1
    .long idt

    .section .note.GNU-stack, "", @progbits
